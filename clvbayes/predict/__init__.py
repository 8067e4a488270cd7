"""Per-customer predictions: posteriors, predictive draws, summaries, holdout validation."""

from clvbayes.predict.customers import (
    DRAW_VARIABLES,
    dert,
    expected_purchases,
    p_alive,
    p_no_purchase,
    predict_customers,
    purchase_pmf,
)
from clvbayes.predict.holdout import HoldoutReport, validate_holdout
from clvbayes.predict.options import PredictOptions
from clvbayes.predict.result import Result
from clvbayes.predict.summaries import summary_table

__all__ = [
    "DRAW_VARIABLES",
    "HoldoutReport",
    "PredictOptions",
    "Result",
    "dert",
    "expected_purchases",
    "p_alive",
    "p_no_purchase",
    "predict_customers",
    "purchase_pmf",
    "summary_table",
    "validate_holdout",
]
