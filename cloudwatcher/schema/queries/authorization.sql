-- name: actor
SELECT u.id, u.email, u.is_active,
       coalesce(array_agg(DISTINCT rp.permission) FILTER (WHERE rp.permission IS NOT NULL), '{}')
           AS permissions,
       coalesce(bool_or(r.name = 'admin'), false) AS is_admin
FROM users u
LEFT JOIN user_roles ur ON ur.user_id = u.id
LEFT JOIN roles r ON r.id = ur.role_id
LEFT JOIN role_permissions rp ON rp.role_id = r.id
WHERE lower(u.email) = lower($1)
GROUP BY u.id
ORDER BY (u.email = $1) DESC
LIMIT 1;

-- name: location_in_scope
-- A location by name, with whether the user's departments (or their descendants) cover it.
WITH RECURSIVE scope AS (
    SELECT dept_id FROM user_departments WHERE user_id = $2
    UNION
    SELECT d.id FROM departments d JOIN scope s ON d.parent_id = s.dept_id
)
SELECT l.id, l.name, l.dept_id, l.is_active,
       ($3 OR l.dept_id IN (SELECT dept_id FROM scope)) AS in_scope
FROM locations l
WHERE l.name = $1;

-- name: location_id_in_scope
WITH RECURSIVE scope AS (
    SELECT dept_id FROM user_departments WHERE user_id = $2
    UNION
    SELECT d.id FROM departments d JOIN scope s ON d.parent_id = s.dept_id
)
SELECT $3 OR EXISTS (SELECT 1 FROM locations l WHERE l.id = $1 AND l.dept_id IN (SELECT dept_id FROM scope));

-- name: user_by_email
-- A user by e-mail address, case-insensitively (an exact match first).
SELECT id FROM users WHERE lower(email) = lower($1) ORDER BY (email = $1) DESC LIMIT 1;
