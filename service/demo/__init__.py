"""`perennial demo`: the closed loop on embedded defaults (broker, bootstrap, trainer, service, traffic)."""
