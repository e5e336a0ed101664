-- One row per segment, categorical attribute and value: how many of the segment's customers have
-- it, and how that share compares with everyone's (index 100 = the population's share).
-- Attributes are the declared category columns that are not features (pipeline.toml).
with

assignments as (
    select * from ml.customer_segments
),

customers as (
    select * from intermediate.int_customer_features
),

-- One (attribute, value) pair per customer and categorical attribute; a missing value is kept
-- as null, so the shares of a segment add up to 1.
member_values as (
    select
        assignments.segment_id,
        assignments.segment_name,
        unnest(
            cast(
                [each(profile_categories, {'attribute': '_', 'value': cast(customers._ as varchar)})]
                as struct(attribute varchar, value varchar)[]
            ),
            recursive := true
        )
    from assignments
    inner join customers
        on assignments.customer_id = customers.customer_id
),

segment_counts as (
    select segment_id, any_value(segment_name) as segment_name, attribute, value, count(*) as n
    from member_values
    group by segment_id, attribute, value
),

shares as (
    select
        segment_id,
        segment_name,
        attribute,
        value,
        n,
        n / sum(n) over (partition by segment_id, attribute) as segment_share,
        sum(n) over (partition by attribute, value)
            / sum(n) over (partition by attribute) as population_share
    from segment_counts
)

select
    segment_id,  -- The segment (marts.dim_segments)
    segment_name,  -- The segment's readable name
    attribute,  -- The attribute column (a declared category that is not a feature)
    value,  -- One of its values; null for customers without one
    n as customers,  -- The segment's customers with this value
    segment_share as share,  -- Share of the segment's customers with this value
    population_share,  -- Share of all segmented customers with this value
    100 * segment_share / population_share as share_index  -- 100 = as common as in the population
from shares
order by segment_id, attribute, value nulls last
