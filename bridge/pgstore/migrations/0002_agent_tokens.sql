-- Agent token revocation (issue 10): one row per agent whose tokens were ever revoked. Tokens
-- minted with an epoch below the row's are void on every node; revoking moves the epoch on by one
-- in a single statement, so concurrent revocations each count.

CREATE TABLE agent_tokens (
    merchant_id   text COLLATE "C" NOT NULL,
    mode          text COLLATE "C" NOT NULL,
    agent_id      text COLLATE "C" NOT NULL,
    epoch         bigint NOT NULL,
    revoked_ns    bigint NOT NULL,
    PRIMARY KEY (merchant_id, mode, agent_id)
);
