-- Challenges a crash may have left in processing, which the CA validates
-- again at start: a partial index holds only those few.
CREATE INDEX challenges_processing ON challenges (id) WHERE state = 'processing';
