-- sqlite3 workload for the preload tests: 200k inserts with an index, a
-- join, an aggregate and VACUUM; the output does not depend on the
-- allocator.
PRAGMA journal_mode = OFF;
PRAGMA synchronous = OFF;
CREATE TABLE users(id INTEGER PRIMARY KEY, name TEXT, team INTEGER);
CREATE TABLE events(id INTEGER PRIMARY KEY, user_id INTEGER, kind TEXT, amount INTEGER);
CREATE INDEX events_user ON events(user_id);
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2000)
  INSERT INTO users SELECT i, 'user' || i, i % 17 FROM n;
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 200000)
  INSERT INTO events SELECT i, (i * 7919) % 2000 + 1,
    CASE i % 3 WHEN 0 THEN 'buy' WHEN 1 THEN 'sell' ELSE 'hold' END,
    (i * 31) % 1000 FROM n;
SELECT u.team, e.kind, COUNT(*), SUM(e.amount)
  FROM events e JOIN users u ON u.id = e.user_id
  GROUP BY u.team, e.kind ORDER BY u.team, e.kind;
DELETE FROM events WHERE amount < 100;
VACUUM;
SELECT COUNT(*), SUM(amount), MAX(user_id) FROM events;
