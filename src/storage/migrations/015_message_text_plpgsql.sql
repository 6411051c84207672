-- memory_message_text in PL/pgSQL, returning exactly what migration 014's SQL body returns (so
-- the two search indexes over it hold nothing stale and are not rebuilt). Why: a SQL function
-- that cannot be inlined (this one has a FROM and a subquery) is parsed and planned again in
-- every statement that calls it, once per call site. The append statement calls it at five
-- sites (the listing's user texts, and the expressions of both search indexes), so a one-message
-- append spent about 1.3 ms of its 3.6 ms planning this function. PL/pgSQL keeps its compiled
-- body and its plans for the connection's life.
CREATE OR REPLACE FUNCTION memory_message_text(message json) RETURNS text
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
  safe json := memory_text_json(message);
BEGIN
  CASE json_typeof(safe -> 'content')
    WHEN 'string' THEN
      RETURN safe ->> 'content';
    WHEN 'array' THEN
      RETURN (
        SELECT string_agg(part ->> 'text', ' ')
        FROM json_array_elements(safe -> 'content') AS part
        WHERE part ->> 'type' = 'text'
      );
    ELSE
      RETURN NULL;
  END CASE;
END
$$;
