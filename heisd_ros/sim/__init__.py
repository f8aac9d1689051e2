"""Simulated tasks (robosuite + MuJoCo) behind one interface, with scripted experts.

``SimEnv`` (env.py) is the only entry point to the simulator; ``TASKS`` (tasks.py)
lists the task families; ``make_expert`` (experts.py) returns the privileged
scripted expert of a task. Importing this package does not import robosuite.
"""
