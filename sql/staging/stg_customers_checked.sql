-- Every raw customer row, typed, with every reason it cannot be staged.
-- stg_customers, stg_customers_rejected and stg_customers_reconciliation all read this one model,
-- so the three can never disagree about which row went where.
-- The declared columns (pipeline.toml) are typed by their kind and checked by their rule;
-- `python pipeline.py compile stg_customers_checked` shows the SQL with them written out.
with

-- Read three times. Not materialized: a copy of every raw row costs more than a second scan.
raw_rows as not materialized (
    select * from raw.customers
),

-- Only an id seen more than once can be a duplicate or carry conflicting values, so only the
-- rows of such ids are checked a second time, for the duplicate rules: usually a few percent of
-- the rows; every row when the same export landed twice, and even then this is the faster shape.
-- They are found by a key cheaper than typing the id: as a double, every spelling of one whole
-- number has one key ('17850', '+17850', '17850.0'). Keys that two ids share only add rows to
-- check. Materializing every checked row to read it twice instead, at 10M rows (memory_limit
-- 1GB): 11.0 s against 8.1 s; with every row landed twice, 23.3 s against 21.3 s.
repeated_keys as (
    select try_cast(trim(customer_id) as double) as id_key
    from raw_rows
    group by all
    having count(*) > 1
),

rows_to_check as not materialized (
    select 'output' as purpose, raw_rows.*
    from raw_rows
    union all
    select 'duplicate rules' as purpose, raw_rows.*
    from raw_rows
    semi join repeated_keys
        on try_cast(trim(raw_rows.customer_id) as double) = repeated_keys.id_key
),

typed as (
    select
        raw_rows.purpose,
        raw_rows._source_file as source_file,
        raw_rows._line_number as line_number,
        raw_rows._parse_error as parse_error,
        nullif(trim(raw_rows.customer_id), '') as customer_id_text,
        each(customers, nullif(trim(raw_rows._), '') as _text),
        whole_number(nullif(trim(raw_rows.customer_id), '')) as customer_id,  -- digits only, or '17850.0'
        typed_values(customers, raw_rows)
    from rows_to_check as raw_rows
),

-- Each reader keeps one purpose, so each branch of rows_to_check is typed and checked once.
row_checks as not materialized (
    select
        typed.*,
        list_filter(
            [
                case when parse_error is not null then 'malformed row: ' || parse_error end,
                case
                    when customer_id_text is null then 'customer_id is missing'
                    when customer_id is null
                        then 'customer_id ''' || customer_id_text || ''' is not an integer'
                end,
                value_reasons(customers)
            ],
            lambda reason: reason is not null
        ) as row_reasons
    from typed
),

-- Among rows that pass the row checks, one customer id must carry one set of values, and the
-- first copy (by file and line) is the one kept.
valid_ids as (
    select
        customer_id,
        min(row(each(customers, _))) is distinct from max(row(each(customers, _)))
            as has_conflict,
        min({'f': source_file, 'l': line_number}) as first_copy
    from row_checks
    where purpose = 'duplicate rules' and len(row_reasons) = 0
    group by customer_id
),

id_checks as (
    select
        row_checks.*,
        len(row_checks.row_reasons) = 0 as row_is_valid,
        coalesce(len(row_checks.row_reasons) = 0 and valid_ids.has_conflict, false)
            as has_conflict,
        coalesce(
            len(row_checks.row_reasons) = 0
            and {'f': row_checks.source_file, 'l': row_checks.line_number}
            <> valid_ids.first_copy,
            false
        ) as is_later_copy
    from row_checks
    left join valid_ids
        on row_checks.customer_id = valid_ids.customer_id
    where row_checks.purpose = 'output'
)

select
    source_file,  -- The landing file the row came from, relative to warehouse.raw_dir
    line_number,  -- The line of that file the row starts on (the header is line 1)
    customer_id,  -- The customer id, a whole number; null when it is not one
    each(customers, _),  -- {column}, typed ({declared}); null when missing or not typed
    customer_id_text,  -- customer_id as written, trimmed; null when empty
    each(customers, _text),  -- {column} as written, trimmed; null when empty
    case
        when has_conflict
            then list_append(
                row_reasons,
                'customer_id ' || customer_id || ' appears with conflicting values'
            )
        else row_reasons
    end as reasons,  -- Every reason the row cannot be staged; empty when it can
    row_is_valid and not has_conflict and is_later_copy as is_collapsed_duplicate  -- A later exact copy of a staged row: collapsed, not staged
from id_checks
