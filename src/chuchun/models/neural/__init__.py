"""Neural models (PyTorch, optional `deep` extra); nothing outside this package imports torch."""
