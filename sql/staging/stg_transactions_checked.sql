-- Every raw order line, typed, with every reason it cannot be staged.
-- stg_transactions, stg_transactions_rejected, stg_transactions_copies and
-- stg_transactions_reconciliation all read this one model, so they can never disagree about
-- which line went where.
-- The canonical columns (customer_id, order_id, order_date, amount, quantity, unit_price,
-- product_id) are read by name; one the config does not map is null, and is_mapped() says which.
with

raw_lines as (
    select * from raw.transactions
),

settings as (
    select * from config.order_settings
),

typed as (
    select
        raw_lines._source_file as source_file,
        raw_lines._line_number as line_number,
        raw_lines._parse_error as parse_error,
        -- Every column of the file (mapped or not) hashed, to find exact copies of a line.
        hash(*columns(* exclude (_source_file, _line_number, _parse_error))) as line_hash,
        nullif(trim(raw_lines.customer_id), '') as customer_id_text,
        nullif(trim(raw_lines.order_id), '') as order_id,
        nullif(trim(raw_lines.order_date), '') as order_date_text,
        nullif(trim(raw_lines.amount), '') as amount_text,
        nullif(trim(raw_lines.quantity), '') as quantity_text,
        nullif(trim(raw_lines.unit_price), '') as unit_price_text,
        nullif(trim(raw_lines.product_id), '') as product_id,
        each(transactions, nullif(trim(raw_lines._), '') as _text),
        whole_number(nullif(trim(raw_lines.customer_id), '')) as customer_id,  -- digits only, or '17850.0'
        timestamp_of(transactions, nullif(trim(raw_lines.order_date), '')) as order_date,
        try_cast(nullif(trim(raw_lines.amount), '') as double) as amount,
        try_cast(nullif(trim(raw_lines.quantity), '') as double) as quantity,
        try_cast(nullif(trim(raw_lines.unit_price), '') as double) as unit_price,
        typed_values(transactions, raw_lines)
    from raw_lines
),

valued as (
    select
        typed.*,
        case
            when is_mapped(transactions, amount) then amount
            else quantity * unit_price
        end as written_value,
        settings.cancellation_prefix,
        settings.snapshot_date,
        settings.min_order_date,
        settings.max_order_date,
        settings.excluded_products,
        settings.non_product_codes,
        settings.counts_free_purchases
    from typed
    cross join settings
),

line_checks as (
    select
        valued.*,
        case
            when is_mapped(transactions, order_id)
                then coalesce(starts_with(order_id, cancellation_prefix), false)
            else coalesce(written_value < 0, false)
        end as is_cancellation,
        coalesce(list_contains(non_product_codes, product_id), false) as is_non_product,
        list_filter(
            [
                case when parse_error is not null then 'malformed row: ' || parse_error end,
                case
                    when customer_id_text is null then 'customer_id is missing'
                    when customer_id is null
                        then 'customer_id ''' || customer_id_text || ''' is not an integer'
                end,
                case
                    when order_date_text is null then 'order_date is missing'
                    when order_date is null
                        then 'order_date ''' || order_date_text || ''' is not a date'
                    when cast(order_date as date) > max_order_date
                        then 'order_date ' || order_date || ' is after transactions.max_order_date '
                            || max_order_date || ' (default: the day of the run)'
                    when cast(order_date as date) < min_order_date
                        then 'order_date ' || order_date || ' is before transactions.min_order_date '
                            || min_order_date
                    when cast(order_date as date) >= snapshot_date
                        then 'order_date ' || order_date || ' is not before transactions.snapshot_date '
                            || snapshot_date
                end,
                case
                    when is_mapped(transactions, order_id) and order_id is null
                        then 'order_id is missing'
                end,
                case
                    when not is_mapped(transactions, amount) then null
                    when amount_text is null then 'amount is missing'
                    when amount is null or not isfinite(amount)
                        then 'amount ''' || amount_text || ''' is not a number'
                    when abs(amount) > 1e15
                        then 'amount ' || amount || ' is beyond ±1e15, the largest line value staged'
                end,
                case
                    when not is_mapped(transactions, quantity) then null
                    when quantity_text is null then 'quantity is missing'
                    when quantity is null or not isfinite(quantity)
                        then 'quantity ''' || quantity_text || ''' is not a number'
                    when quantity = 0 then 'quantity is zero'
                end,
                case
                    when not is_mapped(transactions, unit_price) then null
                    when unit_price_text is null then 'unit_price is missing'
                    when unit_price is null or not isfinite(unit_price)
                        then 'unit_price ''' || unit_price_text || ''' is not a number'
                    when unit_price < 0 then 'unit_price ' || unit_price || ' is negative'
                end,
                -- Values are summed as DECIMAL(38, 10) downstream: a line worth more than a
                -- quadrillion is a typo, and one past 1e28 could not be summed at all.
                case
                    when is_mapped(transactions, amount) then null
                    when not (isfinite(quantity) and isfinite(unit_price)) then null
                    when not isfinite(quantity * unit_price) or abs(quantity * unit_price) > 1e15
                        then 'quantity ' || quantity || ' × unit_price ' || unit_price
                            || ' is beyond ±1e15, the largest line value staged'
                end,
                case
                    when list_contains(excluded_products, product_id)
                        then 'product_id ''' || product_id || ''' is excluded (transactions.exclude_products)'
                end,
                value_reasons(transactions)
            ],
            lambda reason: reason is not null
        ) as reasons
    from valued
)

select
    line_checks.source_file,  -- The landing file the line came from, relative to warehouse.raw_dir
    line_checks.line_number,  -- The line of that file the record starts on (the header is line 1)
    line_checks.customer_id,  -- The customer id, a whole number; null when it is not one
    case
        when is_mapped(transactions, order_id) then line_checks.order_id
        else line_checks.source_file || ':' || line_checks.line_number
    end as order_id,  -- The order (invoice) id; without a mapped order_id every line is its own order, named file:line
    line_checks.order_date,  -- When the order was placed (a timestamp)
    line_checks.product_id,  -- The product (stock code), if mapped
    line_checks.quantity,  -- Units on the line, if mapped; negative on a cancellation
    line_checks.unit_price,  -- Price per unit, if mapped
    case
        when line_checks.is_cancellation then -abs(line_checks.written_value)
        else line_checks.written_value
    end as line_value,  -- The line's value: amount, or quantity x unit_price; a cancellation's value is negative
    line_checks.is_cancellation and not line_checks.is_non_product
        as is_return,  -- A product returned: its order id starts with transactions.cancellation_prefix (without order ids: a negative value)
    not line_checks.is_non_product and case
        when is_mapped(transactions, order_id) then not line_checks.is_cancellation
        else coalesce(
            line_checks.written_value > 0
            or (line_checks.counts_free_purchases and line_checks.written_value = 0),
            false
        )
    end as is_purchase,  -- A product bought: not a cancellation (without order ids: a positive value, or zero with transactions.free_purchases)
    line_checks.is_non_product,  -- Its product_id is in transactions.non_product_codes (postage, fees): neither a purchase nor a return
    each(transactions, line_checks._),  -- {column}, typed ({declared})
    line_checks.customer_id_text,  -- customer_id as written, trimmed; null when empty
    line_checks.order_date_text,  -- order_date as written, trimmed; null when empty
    line_checks.amount_text,  -- amount as written, trimmed; null when empty or not mapped
    line_checks.quantity_text,  -- quantity as written, trimmed; null when empty or not mapped
    line_checks.unit_price_text,  -- unit_price as written, trimmed; null when empty or not mapped
    each(transactions, line_checks._text),  -- {column} as written, trimmed; null when empty
    line_checks.reasons,  -- Every reason the line cannot be staged; empty when it can
    line_checks.line_hash  -- A hash of every column of the line as written (stg_transactions_copies compares lines with equal hashes)
from line_checks
