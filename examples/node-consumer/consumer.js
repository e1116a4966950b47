// A minimal Node.js consumer of a configpipe queue subscription (docs/consuming.md).
//
// It reads the durable SQS queue the stack creates for a registry consumer
// (configpipe-sub-<service>-<consumer>), validates each ConfigurationUpdated detail with the
// published JSON Schema (docs/contracts/ConfigurationUpdated.schema.json; no Python involved),
// and applies it only if its version is newer than the one it holds for the key: EventBridge
// and SQS deliver at least once and in no particular order, so a duplicate or an older
// version must change nothing. A message whose detail fails the schema is refused: logged
// and deleted, never applied (retrying it could not make it valid).
//
// Progressive rollouts (ConfigurationRollout* announcements, docs/rollouts.md) are validated
// with their own published schemas and then acknowledged without acting on them: deciding
// which subjects read a candidate takes configpipe's bucketing, which this example does not
// port. Ignoring them is safe: a key's candidate version is never announced as
// ConfigurationUpdated while it rolls out, so this consumer keeps the stable value and moves
// to the candidate with the completion's ConfigurationUpdated (or to the restoring version
// after a rollback), like every reader that knows nothing of rollouts. Delivery outcomes are
// acknowledged and ignored.
//
// What it does NOT do, and the Python Subscription does: catch up from the change log after
// a gap, and read values that are not inline (sensitive, or larger than 1 KiB) from
// parameterName / secretArn. Such an update is applied with "value": null and
// "valueInline": false, so the service knows to read it.
//
// Configuration (environment): QUEUE_URL (required); STATE_FILE (held versions and values,
// JSON; default ./state.json); IDLE_EXIT_SECONDS (exit after this long without a message;
// default: run forever); SCHEMA (default: the repo's published schema). The AWS SDK reads
// credentials, region and AWS_ENDPOINT_URL (the local pipeline) from the environment.
"use strict";

const fs = require("node:fs");
const path = require("node:path");
const Ajv2020 = require("ajv/dist/2020");
const addFormats = require("ajv-formats");
const {
  SQSClient,
  ReceiveMessageCommand,
  DeleteMessageCommand,
} = require("@aws-sdk/client-sqs");

const SCHEMA =
  process.env.SCHEMA ||
  path.join(__dirname, "..", "..", "docs", "contracts", "ConfigurationUpdated.schema.json");
const STATE_FILE = process.env.STATE_FILE || path.join(process.cwd(), "state.json");
const IDLE_EXIT_SECONDS = process.env.IDLE_EXIT_SECONDS ? Number(process.env.IDLE_EXIT_SECONDS) : null;

const ajv = new Ajv2020({ allErrors: true, strict: false });
addFormats(ajv);
const validUpdate = ajv.compile(JSON.parse(fs.readFileSync(SCHEMA, "utf8")));
// Each ConfigurationRollout* detail-type has its schema beside ConfigurationUpdated's.
const rolloutValidators = new Map();
function rolloutValidator(detailType) {
  if (!rolloutValidators.has(detailType)) {
    const file = path.join(path.dirname(SCHEMA), `${detailType}.schema.json`);
    // A detail-type newer than the published schemas: acknowledged, like any unknown one.
    const validate = fs.existsSync(file) ? ajv.compile(JSON.parse(fs.readFileSync(file, "utf8"))) : null;
    rolloutValidators.set(detailType, validate);
  }
  return rolloutValidators.get(detailType);
}

function loadState() {
  try {
    return JSON.parse(fs.readFileSync(STATE_FILE, "utf8"));
  } catch (error) {
    if (error.code === "ENOENT") return {};
    throw error;
  }
}

function saveState(state) {
  // Write then rename: a crash never leaves a half-written state behind.
  fs.writeFileSync(`${STATE_FILE}.tmp`, JSON.stringify(state, null, 2));
  fs.renameSync(`${STATE_FILE}.tmp`, STATE_FILE);
}

function log(entry) {
  process.stdout.write(`${JSON.stringify(entry)}\n`);
}

/** What to do with one queue message; returns the log entry. Mutates state when applying. */
function handle(body, state) {
  let event;
  try {
    event = JSON.parse(body);
  } catch {
    return { outcome: "refused", reason: "not JSON" };
  }
  const detailType = event && typeof event === "object" ? event["detail-type"] : undefined;
  if (typeof detailType === "string" && detailType.startsWith("ConfigurationRollout")) {
    return rolloutOutcome(detailType, event.detail);
  }
  if (detailType !== "ConfigurationUpdated") {
    return { outcome: "ignored", detailType };
  }
  const detail = event.detail;
  if (!validUpdate(detail)) {
    const errors = validUpdate.errors.map((e) => `${e.instancePath || "/"} ${e.message}`);
    return { outcome: "refused", reason: "schema", errors };
  }
  const scope = `${detail.service}/${detail.environment}/${detail.key}`;
  const held = state[scope] ? state[scope].version : 0;
  if (detail.version <= held) {
    return { outcome: "dropped", reason: "stale or duplicate", scope, version: detail.version, held };
  }
  state[scope] = {
    version: detail.version,
    deleted: Boolean(detail.deleted),
    valueInline: Boolean(detail.valueInline),
    value: detail.valueInline ? detail.value : null,
  };
  return { outcome: "applied", scope, version: detail.version, previouslyHeld: held };
}

/** A rollout announcement: checked against its schema, then acknowledged and not acted on. */
function rolloutOutcome(detailType, detail) {
  const validate = rolloutValidator(detailType);
  if (validate === null) return { outcome: "ignored", detailType };
  if (!validate(detail)) {
    const errors = validate.errors.map((e) => `${e.instancePath || "/"} ${e.message}`);
    return { outcome: "refused", reason: "schema", detailType, errors };
  }
  return {
    outcome: "ignored",
    detailType,
    scope: `${detail.service}/${detail.environment}/${detail.key}`,
    rolloutId: detail.rolloutId,
    status: detail.status,
    candidateVersion: detail.candidateVersion,
    sequence: detail.sequence,
  };
}

async function main() {
  const queueUrl = process.env.QUEUE_URL;
  if (!queueUrl) {
    console.error("QUEUE_URL is required");
    process.exit(2);
  }
  const sqs = new SQSClient({});
  const state = loadState();
  let idleSince = Date.now();
  for (;;) {
    const { Messages = [] } = await sqs.send(
      new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 1 }),
    );
    if (Messages.length === 0) {
      if (IDLE_EXIT_SECONDS !== null && Date.now() - idleSince >= IDLE_EXIT_SECONDS * 1000) return;
      continue;
    }
    idleSince = Date.now();
    // Within one receive, in version order: a burst reordered in flight loses nothing here.
    const parsed = Messages.map((m) => ({ m, v: versionOf(m.Body) })).sort((a, b) => a.v - b.v);
    for (const { m } of parsed) {
      const entry = handle(m.Body, state);
      if (entry.outcome === "applied") saveState(state); // before the delete: at-least-once
      log({ messageId: m.MessageId, ...entry });
      await sqs.send(new DeleteMessageCommand({ QueueUrl: queueUrl, ReceiptHandle: m.ReceiptHandle }));
    }
  }
}

function versionOf(body) {
  try {
    const v = JSON.parse(body).detail.version; // undefined for anything but an update: first
    return Number.isInteger(v) ? v : 0;
  } catch {
    return 0;
  }
}

module.exports = { handle };

if (require.main === module) {
  main().catch((error) => {
    console.error(error);
    process.exit(1);
  });
}
