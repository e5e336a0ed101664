-- The holdout by calibration behaviour (the paper's conditional expectations): for the
-- calibration customers with 0, 1, … 6 and 7 or more repeat purchases in calibration, the mean
-- repeat purchases they made in the holdout, what BG/NBD expected, and the naive baseline.
with

customers as (
    select * from ml.value_holdout_customers
),

grouped as (
    select
        least(calibration_repeat_purchases, 7) as calibration_purchases,
        count(*) as customers,
        repeatable_mean(actual_purchases) as actual_purchases,
        repeatable_mean(predicted_purchases) as predicted_purchases,
        repeatable_mean(baseline_purchases) as baseline_purchases
    from customers
    group by least(calibration_repeat_purchases, 7)
)

select
    calibration_purchases,  -- Repeat purchases in calibration (x); 7 stands for 7 or more
    case
        when calibration_purchases = 7 then '7+'
        else cast(calibration_purchases as varchar)
    end as calibration_purchases_label,  -- The same as a label: 0 … 6, 7+
    customers,  -- Calibration customers with that many
    actual_purchases,  -- Their mean repeat purchases in the holdout
    predicted_purchases,  -- BG/NBD's conditional expectation, averaged over them
    baseline_purchases  -- The naive baseline's, averaged
from grouped
order by calibration_purchases
