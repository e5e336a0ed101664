-- Period by period through the holdout after value.calibration_end: the cumulative repeat
-- purchases of the calibration customers that BG/NBD (fitted on calibration) expected, that the
-- naive baseline expected, and that they made (the paper's tracking plot).
with

expected as (
    select * from ml.value_holdout_expected
),

customers as (
    select * from intermediate.int_customer_value_inputs
    where in_calibration
),

purchases as (
    select * from intermediate.int_customer_purchases
),

holdout_purchases as (
    select purchases.purchase_date
    from purchases
    inner join customers
        on purchases.customer_id = customers.customer_id
    where purchases.purchase_date > customers.calibration_end
),

made as (
    select
        expected.period,
        count(holdout_purchases.purchase_date) as actual_cumulative_purchases
    from expected
    left join holdout_purchases
        on holdout_purchases.purchase_date <= expected.period_end
    group by expected.period
)

select
    expected.period,  -- Periods (value.period) after value.calibration_end: 1 is the first
    expected.period_end,  -- The last day of the period
    made.actual_cumulative_purchases,  -- Repeat purchases the calibration customers made from calibration's end to the period's end
    expected.expected_cumulative_purchases,  -- What BG/NBD expected (fitted on calibration); null when it was not fitted
    expected.baseline_cumulative_purchases,  -- What the naive baseline expected (each customer keeps their calibration rate)
    expected.expected_cumulative_purchases
    - made.actual_cumulative_purchases as model_error,  -- Expected minus actual
    expected.baseline_cumulative_purchases
    - made.actual_cumulative_purchases as baseline_error  -- The baseline's expected minus actual
from expected
inner join made
    on expected.period = made.period
order by expected.period
