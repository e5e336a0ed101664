-- One row per customer with a purchase: what they are expected to do next and what they are
-- worth (ml.customer_value_predictions, from the value models fitted on the whole
-- observation), beside the summaries the models read and the customer's segment and RFM group.
with

predictions as (
    select * from ml.customer_value_predictions
),

inputs as (
    select * from intermediate.int_customer_value_inputs
),

segments as (
    select * from ml.customer_segments
),

rfm as (
    select * from marts.rfm_scores
)

select
    predictions.*,
    inputs.repeat_purchases,  -- x: purchase days after the first (not RFM's frequency)
    inputs.recency_period,  -- t_x: periods from the first purchase to the last (not RFM's recency)
    inputs.age_period,  -- T: periods from the first purchase to the observation's end
    inputs.mean_repeat_value,  -- The mean value of the repeat purchases
    segments.segment_id,  -- The customer's segment; null when not segmented
    segments.segment_name,  -- Its name
    rfm.rfm_group  -- The customer's RFM group (marts.rfm_scores)
from predictions
inner join inputs
    on predictions.customer_id = inputs.customer_id
left join segments
    on predictions.customer_id = segments.customer_id
left join rfm
    on predictions.customer_id = rfm.customer_id
order by predictions.customer_id
