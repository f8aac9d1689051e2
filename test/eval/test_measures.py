"""The figures of the reports: Wilson interval, latency summary, token deviation, token/FLOP counting, schema."""
from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from transformers import DynamicCache, LlamaConfig, LlamaForCausalLM

from heisd_ros.core.errors import InvalidInputError
from heisd_ros.eval.measures import TokenCounter, latency_summary, token_deviation, wilson_interval
from heisd_ros.eval.results import SCHEMA, validate_document


def test_wilson_interval_matches_reference_values():
    lo, hi = wilson_interval(5, 10)
    assert lo == pytest.approx(0.2366, abs=1e-4) and hi == pytest.approx(0.7634, abs=1e-4)
    lo, hi = wilson_interval(0, 10)
    assert lo == 0.0 and hi == pytest.approx(0.2775, abs=1e-4)
    lo, hi = wilson_interval(10, 10)
    assert hi == pytest.approx(1.0) and lo == pytest.approx(0.7225, abs=1e-4)
    assert wilson_interval(0, 0) == (0.0, 1.0)
    for n in (3, 6, 100):  # exactly 0 and 1 at the ends, not the formula's rounding residue
        assert wilson_interval(0, n)[0] == 0.0 and wilson_interval(n, n)[1] == 1.0
    with pytest.raises(InvalidInputError):
        wilson_interval(3, 2)


def test_latency_summary_and_deviation():
    s = latency_summary(list(range(1, 101)))
    assert s["mean"] == pytest.approx(50.5) and s["p50"] == pytest.approx(50.5) and s["p99"] == pytest.approx(99.01)
    assert latency_summary([])["mean"] is None
    assert token_deviation(np.array([3, 5, 7]), np.array([3, 1, 7])) == (pytest.approx(4 / 3), 4, False)
    assert token_deviation(np.array([3, 5]), np.array([3, 5]))[2] is True
    with pytest.raises(InvalidInputError):
        token_deviation(np.zeros(3), np.zeros(4))


def test_token_counter_counts_prefill_and_decode_tokens_with_context():
    torch.manual_seed(0)
    lm = LlamaForCausalLM(LlamaConfig(vocab_size=50, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                      num_attention_heads=4, num_key_value_heads=4)).eval()
    counter = TokenCounter(lm)
    dense = sum(p.numel() for p in lm.parameters()) - lm.get_input_embeddings().weight.numel()
    assert counter.dense_params == dense
    cache = DynamicCache(config=lm.config)
    with torch.no_grad():
        lm(input_ids=torch.arange(5)[None], past_key_values=cache, use_cache=True)
        lm(input_ids=torch.tensor([[7]]), past_key_values=cache, use_cache=True)
        with counter.paused():
            lm(input_ids=torch.arange(4)[None])
    tokens, flops = counter.take()
    assert tokens == 6
    expected = counter.flops_of(5, 0) + counter.flops_of(1, 5)
    assert flops == pytest.approx(expected)
    assert counter.flops_of(1, 5) > counter.flops_of(1, 0)  # attention over the cached context costs
    assert counter.take() == (0, 0.0)
    counter.close()


def _doc() -> dict:
    row = {"method": "heisd", "task": "lift", "timing": "lockstep", "episodes": 2, "success_rate": 0.5,
           "latency_ms": {"mean": 3.0, "p50": 2.0, "p99": 9.0}, "speedup_vs_ar": 2.1,
           "vla_forward_passes_per_action": 1.5, "mean_accepted_tokens": 5.0, "token_deviation_vs_ar": None,
           "branch_mix": {"ar": 0.25, "drafter": 0.75}}
    return {"schema": SCHEMA, "command": "eval", "bundle": {}, "setup": {}, "results": [row]}


def test_schema_accepts_a_valid_document_and_names_what_breaks_it():
    validate_document(_doc())
    for breaker, message in [
        (lambda d: d["results"][0].pop("speedup_vs_ar"), "speedup_vs_ar"),
        (lambda d: d["results"][0].update(success_rate=1.5), "success_rate"),
        (lambda d: d["results"][0].update(branch_mix={"ar": 0.5}), "branch_mix"),
        (lambda d: d["results"][0]["latency_ms"].update(p99=float("nan")), "p99"),
        (lambda d: d.update(schema="other/0"), "schema"),
        (lambda d: d.update(results=[]), "results"),
    ]:
        doc = copy.deepcopy(_doc())
        breaker(doc)
        with pytest.raises(InvalidInputError, match=message):
            validate_document(doc)


def test_success_vs_speedup_draws_rows_with_no_success_or_an_interval_off_by_rounding(tmp_path):
    from heisd_ros.reports.plots import success_vs_speedup
    rows = [dict(method="ar", task="nut", timing="lockstep", success_rate=0.0, success_ci95=list(wilson_interval(0, 3)), speedup_vs_ar=1.0),
            dict(method="heisd", task="nut", timing="lockstep", success_rate=0.0, success_ci95=[5.6e-17, 0.56], speedup_vs_ar=2.4),
            dict(method="heisd", task="sort", timing="lockstep", success_rate=1.0, success_ci95=[0.44, 0.9999999], speedup_vs_ar=2.1)]
    path = success_vs_speedup(rows, tmp_path / "s.png")
    assert path.is_file() and path.stat().st_size > 1000
