"""Learners: River pipelines and PyTorch networks behind one protocol (see ``base.py``)."""
