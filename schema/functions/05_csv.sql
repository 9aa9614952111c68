-- CSV exports (RFC 4180 records, the language of the header and of the
-- words, ratios, times, the file name), shared by every route with a CSV
-- form: payout runs, reports, plan progress, alerts, tenants.

-- One CSV field (RFC 4180): quoted when it holds a comma, a quote or a line break.
CREATE FUNCTION api.csv_field(v text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN v IS NULL THEN ''
                WHEN v ~ '[",\r\n]' THEN '"' || replace(v, '"', '""') || '"'
                ELSE v END
$$;

-- One CSV record of fields, ended by CRLF.
CREATE FUNCTION api.csv_record(fields text[]) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT string_agg(api.csv_field(f), ',' ORDER BY n) || E'\r\n'
      FROM unnest(fields) WITH ORDINALITY AS x(f, n)
$$;

/*
 * The language of a CSV export: "zh" when the query says lang=zh or the
 * daemon found Accept-Language: zh... (ctx.lang), else "en". Only the
 * header, yes/no and the words for codes change; the columns stay the same.
 */
CREATE FUNCTION api.csv_lang(ctx jsonb, args jsonb) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN coalesce(args->>'lang', ctx->>'lang') = 'zh' THEN 'zh' ELSE 'en' END
$$;

-- The header record: the English column names, or their Chinese ones.
CREATE FUNCTION api.csv_header(lang text, en text[], zh text[]) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT api.csv_record(CASE WHEN lang = 'zh' THEN zh ELSE en END)
$$;

-- yes / no, or 是 / 否; empty for null.
CREATE FUNCTION api.csv_bool(lang text, b boolean) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN b IS NULL THEN NULL
                WHEN lang = 'zh' THEN CASE WHEN b THEN '是' ELSE '否' END
                WHEN b THEN 'yes' ELSE 'no' END
$$;

-- A code (a reason, a kind, a status) as the export shows it: itself, or in Chinese.
CREATE FUNCTION api.csv_word(lang text, code text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN lang <> 'zh' OR code IS NULL THEN code
                ELSE coalesce(CASE code
                    WHEN 'no_data' THEN '无数据'
                    WHEN 'veto' THEN '一票否决'
                    WHEN 'cap' THEN '年度上限'
                    WHEN 'not_tech' THEN '非科技型企业'
                    WHEN 'entry_age' THEN '入孵时成立超期'
                    WHEN 'already_rewarded' THEN '已奖励过'
                    WHEN 'graduate' THEN '本期毕业'
                    WHEN 'late_graduation' THEN '补报毕业'
                    WHEN 'clawback' THEN '追回'
                    WHEN 'total' THEN '合计'
                    WHEN 'draft' THEN '草稿'
                    WHEN 'approved' THEN '已审批'
                    WHEN 'firing' THEN '告警中'
                    WHEN 'resolved' THEN '已解除'
                    WHEN 'critical' THEN '严重'
                    WHEN 'warning' THEN '警告'
                    WHEN 'info' THEN '提示'
                    WHEN 'incubating' THEN '在孵'
                    WHEN 'graduated' THEN '已毕业'
                    WHEN 'exited' THEN '已退出'
                    WHEN 'incubator' THEN '孵化器'
                    WHEN 'space_share_breach' THEN '科技企业场地占比低于一票否决线'
                    WHEN 'space_share_warning' THEN '科技企业场地占比接近一票否决线'
                    WHEN 'stale_data' THEN '数据未及时更新'
                    WHEN 'duplicate_enterprise' THEN '同一企业在多个孵化器在孵'
                    WHEN 'overdue_tenant' THEN '在孵企业超期'
                    WHEN 'token_expiring' THEN '令牌即将过期'
                    WHEN 'district' THEN '区县'
                    WHEN 'city' THEN '全市' END, code) END
$$;

-- A CSV answer with the file name it is saved under (Content-Disposition).
CREATE FUNCTION api.csv_reply(csv text, filename text) RETURNS json
LANGUAGE sql IMMUTABLE AS $$
    SELECT json_build_object('csv', csv, 'filename', filename)
$$;

-- A ratio in a CSV: exactly 4 decimals, rounded half-up (0.6 -> 0.6000).
CREATE FUNCTION api.csv_ratio(x numeric) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT round(x, 4)::text
$$;

-- A time in a CSV: the bureau's local time with its offset, 2026-11-26T16:00:00+08:00.
CREATE FUNCTION api.csv_time(ctx jsonb, t timestamptz) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT to_char(t AT TIME ZONE z.tz, 'YYYY-MM-DD"T"HH24:MI:SS')
           || CASE WHEN o.s < 0 THEN '-' ELSE '+' END
           || lpad((abs(o.s) / 3600)::text, 2, '0') || ':'
           || lpad((abs(o.s) % 3600 / 60)::text, 2, '0')
      FROM (SELECT coalesce(ctx->>'timezone', 'UTC') AS tz) z,
           LATERAL (SELECT extract(epoch FROM (t AT TIME ZONE z.tz) - (t AT TIME ZONE 'UTC'))::integer
                           AS s) o
$$;
