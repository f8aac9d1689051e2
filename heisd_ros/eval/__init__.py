"""Evaluation of a bundle: closed loop in simulation, offline on bags, and the speed table.

- rollout.py: the closed-loop runner (also used by the bundle build)
- closed_loop.py: ``heisd eval`` (every method, same seeds, lockstep and realtime)
- replay.py: ``heisd replay`` (every method on every recorded observation of rosbag2 bags)
- replay_ros.py: ``heisd replay --ros`` (the bag played into the running node graph, its outputs recorded)
- bench.py, hf_baselines.py: ``heisd bench`` (ours vs Hugging Face generate / assisted / prompt lookup)
- measures.py, results.py: the figures and the results document (docs/results-schema.md)
- methods.py: the method and timing names (light: the CLI imports it for --help)
"""
