-- One row per customer known to any source: their profile (declared columns, order aggregates)
-- and the segment they belong to; a customer who is not segmented says why; and, for a customer
-- with order lines, what they are worth (marts.customer_value has the whole picture) and their
-- RFM group.
-- Stored in no particular order: ORDER BY customer_id when the order matters.
with

customers as (
    select * from intermediate.int_customer_profiles
),

assignments as (
    select * from ml.customer_segments
),

value as (
    select * from ml.customer_value_predictions
),

rfm as (
    select * from marts.rfm_scores
)

-- No ORDER BY: at 10M customers the sort was half of the model. Exports sort what they write,
-- and the report samples by a hash of the id.
select
    customers.customer_id,  -- Customer id from the landing files
    each(profile, customers._),  -- {column} ({declared})
    assignments.segment_id,  -- The customer's segment (nearest centroid)
    assignments.segment_name,  -- The segment's readable name
    assignments.distance_to_centroid,  -- Distance to the segment centroid in scaled units
    assignments.silhouette,  -- The customer's silhouette value (-1..1)
    assignments.runner_up_segment_id,  -- The second-nearest segment
    assignments.runner_up_segment_name,  -- The runner-up segment's name
    assignments.margin,  -- Distance to the runner-up centroid minus distance to the own centroid
    customers.is_segmented,  -- Every feature is there: the customer has a segment
    customers.unsegmented_reason,  -- Why the customer has no segment (returns only, a feature missing); null when segmented
    value.probability_alive,  -- The probability the customer is still active (marts.customer_value); null without a purchase order or a value fit
    value.customer_lifetime_value,  -- Their expected discounted value over value.clv_horizon_days (marts.customer_value)
    rfm.rfm_group  -- Their RFM group (marts.rfm_scores); null without order lines or a purchase
from customers
left join assignments
    on customers.customer_id = assignments.customer_id
left join value
    on customers.customer_id = value.customer_id
left join rfm
    on customers.customer_id = rfm.customer_id
