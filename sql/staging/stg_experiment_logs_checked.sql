-- Every raw experiment exposure, typed, with every reason it cannot be analysed.
with

raw_rows as (
    select * from raw.experiment_logs
),

customers as (
    select customer_id from staging.stg_customers
),

variants as (
    select spelling, value
    from config.accepted_values
    where column_name = 'variant'
),

typed as (
    select
        raw_rows._source_file as source_file,
        raw_rows._line_number as line_number,
        raw_rows._parse_error as parse_error,
        nullif(trim(raw_rows.experiment), '') as experiment,
        nullif(trim(raw_rows.customer_id), '') as customer_id_text,
        nullif(trim(raw_rows.variant), '') as variant_text,
        nullif(trim(raw_rows.outcome), '') as outcome_text,
        nullif(trim(raw_rows.pre_period_value), '') as pre_period_text,
        nullif(trim(raw_rows.exposed_at), '') as exposed_at_text,
        whole_number(nullif(trim(raw_rows.customer_id), '')) as customer_id,  -- digits only, or '17850.0' (TRY_CAST would round '3.5' to 4)
        variants.value as variant,
        try_cast(nullif(trim(raw_rows.outcome), '') as double) as outcome,
        try_cast(nullif(trim(raw_rows.pre_period_value), '') as double) as pre_period_value,
        try_cast(nullif(trim(raw_rows.exposed_at), '') as timestamp) as exposed_at
    from raw_rows
    left join variants
        on lower(trim(raw_rows.variant)) = variants.spelling
),

row_checks as (
    select
        typed.*,
        list_filter(
            [
                case when parse_error is not null then 'malformed row: ' || parse_error end,
                case when experiment is null then 'experiment is missing' end,
                case
                    when customer_id_text is null then 'customer_id is missing'
                    when customer_id is null
                        then 'customer_id ''' || customer_id_text || ''' is not an integer'
                    when customer_id not in (select customer_id from customers)
                        then 'customer_id ' || customer_id || ' is not a staged customer'
                end,
                case
                    when variant_text is null then 'variant is missing'
                    when variant is null
                        then 'variant ''' || variant_text || ''' is not control or treatment'
                end,
                case
                    when outcome_text is null then 'outcome is missing'
                    when outcome is null or not isfinite(outcome)
                        then 'outcome ''' || outcome_text || ''' is not a number'
                end,
                case
                    when pre_period_text is not null
                        and (pre_period_value is null or not isfinite(pre_period_value))
                        then 'pre_period_value ''' || pre_period_text || ''' is not a number'
                end,
                case
                    when exposed_at_text is not null and exposed_at is null
                        then 'exposed_at ''' || exposed_at_text || ''' is not a timestamp'
                end
            ],
            lambda reason: reason is not null
        ) as row_reasons
    from typed
),

exposure_checks as (
    select
        row_checks.*,
        count(*) over (partition by experiment, customer_id) as exposures
    from row_checks
)

select
    source_file,  -- The landing file the row came from, relative to warehouse.raw_dir
    line_number,  -- The line of that file the row starts on (the header is line 1)
    experiment,  -- The experiment's name
    customer_id,  -- The exposed customer; null when not a staged customer's id
    variant,  -- control or treatment (aliases mapped)
    outcome,  -- The outcome: 0/1 for conversions, an amount otherwise
    pre_period_value,  -- The same metric before the experiment (CUPED covariate), if logged
    exposed_at,  -- When the customer was exposed, if logged
    customer_id_text,  -- customer_id as written, trimmed
    variant_text,  -- variant as written, trimmed
    outcome_text,  -- outcome as written, trimmed
    case
        -- A customer exposed twice cannot be attributed to one arm: every exposure is rejected.
        when exposures > 1 and experiment is not null and customer_id is not null
            then list_append(
                row_reasons,
                'customer_id ' || customer_id || ' exposed ' || exposures
                    || ' times in experiment ''' || experiment || ''''
            )
        else row_reasons
    end as reasons  -- Every reason the exposure cannot be analysed; empty when it can
from exposure_checks
