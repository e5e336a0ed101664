-- Modelling features per segmented customer, raw and scaled as int_feature_scaling says, beside
-- the customer's attributes (the profile's columns that are not features).
with

customers as (
    select * from intermediate.int_customer_profiles
    where is_segmented
),

scaling as (
    select * from intermediate.int_feature_scaling
),

parameters as (
    select
        each(features, max(case when feature = '_' then center end) as _center),
        each(features, max(case when feature = '_' then scale end) as _scale)
    from scaling
)

select
    customers.customer_id,
    each(profile_attributes, customers._),
    each(features, cast(customers._ as double) as _),  -- {label}, as a double
    each(features, (transformed(customers._) - parameters._center) / parameters._scale as _scaled)  -- {label}, transformed and scaled as int_feature_scaling says
from customers
cross join parameters
order by customers.customer_id
