--
-- Catalog facts: the tables pg_dump must dump, and the volatility,
-- strictness and security of every function.
--

-- The three tables are registered with pg_extension_config_dump, so pg_dump
-- dumps their rows although the extension owns them.
SELECT c.oid::regclass AS config_table
FROM pg_extension AS e,
     unnest(e.extconfig) AS config(relid)
     JOIN pg_class AS c ON c.oid = config.relid
WHERE e.extname = 'haematite'
ORDER BY c.relname;

-- The extension's tables and their columns, as the installed script made them.
SELECT c.relname, a.attnum, a.attname, format_type(a.atttypid, a.atttypmod) AS type,
       a.attnotnull AS not_null
FROM pg_class AS c
     JOIN pg_attribute AS a ON a.attrelid = c.oid
WHERE c.relnamespace = 'haematite'::regnamespace
  AND c.relkind = 'r'
  AND a.attnum > 0
  AND NOT a.attisdropped
ORDER BY c.relname, a.attnum;

-- Primary keys: the stream key, (stream key, seq) and the value key.
SELECT conrelid::regclass AS table_name, pg_get_constraintdef(oid) AS primary_key
FROM pg_constraint
WHERE connamespace = 'haematite'::regnamespace
  AND contype = 'p'
ORDER BY conrelid::regclass::text;

-- Every function of the schema: readers are STABLE (s), writers VOLATILE (v).
-- None is STRICT, because a NULL argument must raise 22004 instead of
-- returning NULL.  All are SECURITY DEFINER.
SELECT p.oid::regprocedure AS function,
       pg_get_function_result(p.oid) AS result,
       p.provolatile AS volatility,
       p.proisstrict AS strict,
       p.prosecdef AS security_definer
FROM pg_proc AS p
WHERE p.pronamespace = 'haematite'::regnamespace
ORDER BY p.proname, p.oid::regprocedure::text;

-- The argument names and defaults that named notation relies on.
SELECT p.oid::regprocedure AS function,
       pg_get_function_arguments(p.oid) AS arguments
FROM pg_proc AS p
WHERE p.pronamespace = 'haematite'::regnamespace
ORDER BY p.proname, p.oid::regprocedure::text;

-- Every function and table belongs to the extension, so DROP EXTENSION
-- removes them all.
SELECT count(*) AS objects_outside_extension
FROM (SELECT 'pg_proc'::regclass AS classid, oid AS objid
      FROM pg_proc WHERE pronamespace = 'haematite'::regnamespace
      UNION ALL
      SELECT 'pg_class'::regclass, oid
      FROM pg_class WHERE relnamespace = 'haematite'::regnamespace
                     AND relkind IN ('r', 'S', 'v', 'm')) AS o
WHERE NOT EXISTS (SELECT 1
                  FROM pg_depend AS d
                  WHERE d.classid = o.classid
                    AND d.objid = o.objid
                    AND d.refclassid = 'pg_extension'::regclass
                    AND d.deptype = 'e');
