-- Modelling features per customer, raw and scaled as int_feature_scaling says.
-- A feature that is not configured for modelling has a null scaled column.
with

customers as (
    select * from staging.stg_customers
),

scaling as (
    select * from intermediate.int_feature_scaling
),

parameters as (
    select
        max(case when feature = 'age' then center end) as age_center,
        max(case when feature = 'age' then scale end) as age_scale,
        max(case when feature = 'annual_income_k' then center end) as income_center,
        max(case when feature = 'annual_income_k' then scale end) as income_scale,
        max(case when feature = 'spending_score' then center end) as score_center,
        max(case when feature = 'spending_score' then scale end) as score_scale
    from scaling
)

select
    customers.customer_id,
    customers.gender,
    cast(customers.age as double) as age,
    customers.annual_income_k,
    cast(customers.spending_score as double) as spending_score,
    (customers.age - parameters.age_center) / parameters.age_scale as age_scaled,
    (customers.annual_income_k - parameters.income_center) / parameters.income_scale
        as annual_income_k_scaled,
    (customers.spending_score - parameters.score_center) / parameters.score_scale
        as spending_score_scaled
from customers
cross join parameters
order by customers.customer_id
