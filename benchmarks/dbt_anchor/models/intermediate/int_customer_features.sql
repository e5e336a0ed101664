-- Each feature standardised (population standard deviation, as scikit-learn's StandardScaler).
with

customers as (
    select * from {{ ref('stg_customers') }}
),

scaling as (
    select
        avg(age) as age_mean, stddev_pop(age) as age_sd,
        avg(annual_income_k) as income_mean, stddev_pop(annual_income_k) as income_sd,
        avg(spending_score) as score_mean, stddev_pop(spending_score) as score_sd
    from customers
)

select
    customers.customer_id,
    (customers.age - scaling.age_mean) / scaling.age_sd as age_scaled,
    (customers.annual_income_k - scaling.income_mean) / scaling.income_sd as annual_income_k_scaled,
    (customers.spending_score - scaling.score_mean) / scaling.score_sd as spending_score_scaled
from customers
cross join scaling
