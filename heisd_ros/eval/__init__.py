"""Closed-loop evaluation of a bundle in simulation (rollout.py); ``heisd eval`` builds on it."""
from heisd_ros.eval.rollout import EpisodeResult, RolloutReport, run_episode, run_rollouts

__all__ = ["EpisodeResult", "RolloutReport", "run_episode", "run_rollouts"]
