-- Waivers: an admin accepts one scanner rule's findings for one package (a range, a
-- reason, an expiry). Never deleted: a revocation is recorded in the record itself.
CREATE TABLE waivers (
    id BIGSERIAL PRIMARY KEY,
    record JSONB NOT NULL
);
