"""Names of the decoding methods and timing modes (no heavy imports: the CLI's --help reads them)."""
from __future__ import annotations

METHODS = ("ar", "drafter", "retrieval", "heisd")  # what a bundle's make_decoder builds
TIMINGS = ("lockstep", "realtime")  # closed-loop evaluation: simulator waits for inference, or runs at the control rate
BENCH_METHODS = ("ar", "hf_generate", "hf_assisted", "hf_prompt_lookup", "drafter", "retrieval", "heisd")
