-- How well the value models predicted the holdout after value.calibration_end, next to a naive
-- baseline (each customer keeps buying at their calibration rate and mean value): per-customer
-- mean absolute and root-mean-square errors of repeat purchases and of spend, and the error of
-- the total at the holdout's end. Where the model's error is not below the baseline's, its
-- predictions do not earn their place on this data.
with

customers as (
    select * from ml.value_holdout_customers
),

tracking as (
    select * from marts.value_holdout_tracking
),

final_period as (
    select *
    from tracking
    where period = (select max(period) from tracking)
),

errors as (
    select
        count(*) as customers,
        repeatable_mean(abs(predicted_purchases - actual_purchases)) as model_purchases_mae,
        repeatable_mean(abs(baseline_purchases - actual_purchases)) as baseline_purchases_mae,
        sqrt(repeatable_mean(power(predicted_purchases - actual_purchases, 2))) as model_purchases_rmse,
        sqrt(repeatable_mean(power(baseline_purchases - actual_purchases, 2))) as baseline_purchases_rmse,
        repeatable_mean(abs(predicted_value - actual_value)) as model_value_mae,
        repeatable_mean(abs(baseline_value - actual_value)) as baseline_value_mae,
        sqrt(repeatable_mean(power(predicted_value - actual_value, 2))) as model_value_rmse,
        sqrt(repeatable_mean(power(baseline_value - actual_value, 2))) as baseline_value_rmse
    from customers
),

measures as (
    select
        1 as position,
        'repeat purchases: mean absolute error' as measure,
        model_purchases_mae as model,
        baseline_purchases_mae as baseline,
        customers
    from errors
    union all
    select
        2 as position,
        'repeat purchases: root mean square error' as measure,
        model_purchases_rmse as model,
        baseline_purchases_rmse as baseline,
        customers
    from errors
    union all
    select
        3 as position,
        'spend: mean absolute error' as measure,
        model_value_mae as model,
        baseline_value_mae as baseline,
        customers
    from errors
    union all
    select
        4 as position,
        'spend: root mean square error' as measure,
        model_value_rmse as model,
        baseline_value_rmse as baseline,
        customers
    from errors
    union all
    select
        5 as position,
        'total repeat purchases at the holdout end: relative error' as measure,
        final_period.model_error / nullif(final_period.actual_cumulative_purchases, 0) as model,
        final_period.baseline_error
        / nullif(final_period.actual_cumulative_purchases, 0) as baseline,
        errors.customers
    from errors
    left join final_period
        on true
)

select
    position,  -- The measure's place in the list
    measure,  -- What is measured over the calibration customers in the holdout
    model,  -- The value models' (fitted on calibration); null when they were not fitted
    baseline,  -- The naive baseline's (each customer keeps their calibration rate and mean value)
    abs(model) < abs(baseline) as model_is_better,  -- The models' error is the smaller
    customers  -- Calibration customers compared
from measures
order by position
