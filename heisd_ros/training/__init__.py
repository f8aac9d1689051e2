"""Training of the VLA and drafter, retrieval-cache building, calibration and bundle building.

Stages (each a ``heisd`` command, each writing its part of a bundle and resealing the
manifest): train (train_vla.py) -> train-drafter (distill.py) -> build-cache
(cache.py) -> calibrate (calibration.py); build-bundle (pipeline.py) runs them all.
"""
