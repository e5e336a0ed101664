-- How the classic RFM groups and the k-means segments overlap: one row per RFM group and
-- segment that share customers. A customer with a purchase but no segment (int_customer_profiles
-- says why) is counted under segment_name 'Not segmented'.
with

scores as (
    select * from marts.rfm_scores
),

assignments as (
    select * from ml.customer_segments
),

rfm_map as (
    select * from config.rfm_groups
),

pairs as (
    select
        scores.rfm_group,
        assignments.segment_id,
        coalesce(assignments.segment_name, 'Not segmented') as segment_name,
        count(*) as customers
    from scores
    left join assignments
        on scores.customer_id = assignments.customer_id
    group by scores.rfm_group, assignments.segment_id, coalesce(assignments.segment_name, 'Not segmented')
)

select
    pairs.rfm_group,  -- The named RFM group (marts.rfm_scores)
    pairs.segment_id,  -- The k-means segment (marts.dim_segments); null for customers not segmented
    pairs.segment_name,  -- The segment's readable name
    pairs.customers,  -- Customers in both
    pairs.customers / sum(pairs.customers) over (partition by pairs.rfm_group) as share_of_group,  -- Share of the RFM group's customers in this segment
    pairs.customers / sum(pairs.customers) over (partition by pairs.segment_id) as share_of_segment  -- Share of the segment's customers in this RFM group
from pairs
inner join rfm_map
    on pairs.rfm_group = rfm_map.rfm_group
order by rfm_map.position, pairs.segment_id nulls last
