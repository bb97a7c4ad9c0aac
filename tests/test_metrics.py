"""SLM-Lab metric definitions, checked against series computed by hand."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest

from slm_bench.formats.metrics import (
    MA_WINDOW,
    SCALAR_KEYS,
    SESSION_SCALAR_KEYS,
    session_metrics,
    trial_metrics,
)

RANDOM_RETURN = 5.0


def session_df(total_rewards, frames, opt_steps) -> pd.DataFrame:
    return pd.DataFrame({"total_reward": total_rewards, "frame": frames, "opt_step": opt_steps})


@pytest.fixture
def session_a() -> dict:
    # strengths 5, 15, 10, 25; opt_step 0 at the first checkpoint gives an infinite ratio
    df = session_df([10.0, 20.0, 15.0, 30.0], [500, 1000, 1500, 2000], [0, 10, 20, 40])
    return session_metrics(df, RANDOM_RETURN)


@pytest.fixture
def session_b() -> dict:
    # a shorter session: strengths 15, 15, 20
    df = session_df([20.0, 20.0, 25.0], [500, 1000, 1500], [5, 10, 15])
    return session_metrics(df, RANDOM_RETURN)


def test_session_scalars_by_hand(session_a):
    scalar = session_a["scalar"]
    assert list(scalar) == list(SESSION_SCALAR_KEYS)
    assert scalar["total_reward_ma"] == pytest.approx(18.75)
    assert scalar["strength"] == pytest.approx(55 / 4)
    assert scalar["max_strength"] == pytest.approx(25)
    assert scalar["final_strength"] == pytest.approx(25)
    # sum(str_i / frame_i) / sum(str_i)
    ratios = 5 / 500 + 15 / 1000 + 10 / 1500 + 25 / 2000
    assert scalar["sample_efficiency"] == pytest.approx(ratios / 55)
    # the opt_step 0 point is dropped from the numerator only
    assert scalar["training_efficiency"] == pytest.approx((15 / 10 + 10 / 20 + 25 / 40) / 55)
    # one drop of 5 over the strengths before the last: 5 + 15 + 10
    assert scalar["stability"] == pytest.approx(1 - 5 / 30)


def test_session_local_series_by_hand(session_a):
    local = session_a["local"]
    assert list(local) == [
        "mean_returns",
        "strengths",
        "sample_efficiencies",
        "training_efficiencies",
        "stabilities",
        "frames",
        "opt_steps",
    ]
    assert local["mean_returns"] == [10.0, 20.0, 15.0, 30.0]
    assert local["strengths"] == [5.0, 15.0, 10.0, 25.0]
    assert local["frames"] == [500.0, 1000.0, 1500.0, 2000.0]
    assert local["opt_steps"] == [0.0, 10.0, 20.0, 40.0]
    assert local["sample_efficiencies"] == pytest.approx(
        [0.01 / 5, 0.025 / 20, (0.025 + 10 / 1500) / 30, (0.025 + 10 / 1500 + 0.0125) / 55]
    )
    train_effs = local["training_efficiencies"]
    assert math.isnan(train_effs[0])  # index-aligned division, as pandas does in SLM-Lab
    assert train_effs[1:] == pytest.approx([1.5 / 20, 2.0 / 30, 2.625 / 55])
    assert local["stabilities"] == pytest.approx([1.0, 1 - 5 / 15, 1.0])


def test_session_total_reward_ma_uses_last_100_checkpoints():
    n = 150
    df = session_df([float(i) for i in range(n)], list(range(1, n + 1)), list(range(1, n + 1)))
    metrics = session_metrics(df, 0.0)
    assert MA_WINDOW == 100
    assert metrics["scalar"]["total_reward_ma"] == pytest.approx(sum(range(50, 150)) / 100)
    assert metrics["scalar"]["strength"] == pytest.approx(sum(range(n)) / n)


def test_trial_metrics_by_hand(session_a, session_b):
    trial = trial_metrics([session_a, session_b])
    scalar = trial["scalar"]
    assert list(scalar) == list(SCALAR_KEYS)
    assert scalar["frame"] == 2000  # session 0's last frame
    assert scalar["total_reward_ma"] == pytest.approx((18.75 + 65 / 3) / 2)
    assert scalar["strength"] == pytest.approx((55 / 4 + 50 / 3) / 2)
    assert scalar["max_strength"] == pytest.approx((25 + 20) / 2)
    assert scalar["final_strength"] == pytest.approx((25 + 20) / 2)
    assert scalar["stability"] == pytest.approx(
        (session_a["scalar"]["stability"] + session_b["scalar"]["stability"]) / 2
    )
    # strengths cut to 3 checkpoints: means 10, 15, 15; sample stds 5*sqrt2, 0, 5*sqrt2
    std = 5 * math.sqrt(2)
    assert scalar["consistency"] == pytest.approx(1 - 2 * (2 * std) / 40)
    local = trial["local"]
    assert local["consistencies"] == pytest.approx([1 - 2 * std / 10, 1.0, 1 - 2 * std / 15])
    assert local["strengths"] == [[5.0, 15.0, 10.0, 25.0], [15.0, 15.0, 20.0]]
    assert [len(s) for s in local["stabilities"]] == [3, 2]
    assert local["frames"] == [500.0, 1000.0, 1500.0, 2000.0]
    assert local["opt_steps"] == [0.0, 10.0, 20.0, 40.0]


def test_trial_metrics_accept_json_round_trip(session_a, session_b):
    direct = trial_metrics([session_a, session_b])
    reread = [json.loads(json.dumps(sm)) for sm in (session_a, session_b)]
    assert json.loads(json.dumps(trial_metrics(reread))) == json.loads(json.dumps(direct))


def test_one_session_consistency_as_slm_lab_computes_it(session_a):
    # std over one session is NaN per checkpoint; pandas' NaN-skipping sum makes it 0, so 1.0
    trial = trial_metrics([session_a])
    assert trial["scalar"]["consistency"] == 1.0
    assert all(math.isnan(c) for c in trial["local"]["consistencies"])
    assert trial["scalar"]["total_reward_ma"] == pytest.approx(18.75)


def test_random_return_shifts_strength_not_returns():
    df = session_df([-100.0, -80.0, -60.0], [500, 1000, 1500], [1, 2, 3])
    metrics = session_metrics(df, -200.0)
    assert metrics["local"]["strengths"] == [100.0, 120.0, 140.0]
    assert metrics["scalar"]["total_reward_ma"] == pytest.approx(-80.0)


def test_mean_std_is_slm_labs_calc_srs_mean_std():
    """Cut to the shortest series, per-index mean and pandas' sample std (ddof=1)."""
    from slm_bench.formats.metrics import mean_std

    a, b, c = (
        pd.Series([1.0, 2.0, 3.0, 9.0]),
        pd.Series([3.0, 4.0, 8.0]),
        pd.Series([5.0, 9.0, 1.0]),
    )
    mean, std = mean_std([a, b, c])
    assert list(mean) == [3.0, 5.0, 4.0]
    assert list(std) == pytest.approx([2.0, math.sqrt(13), math.sqrt(13)])  # ddof=1, not ddof=0
    _, single = mean_std([a])
    assert single.isna().all()  # one session: no spread, as SLM-Lab's band
