/**
 * Rules between flags that interact (docs/REFERENCE.md §6 lists them): a
 * combination that can never work is refused when the config is read, naming
 * both flags; one that is merely risky is a warning, logged at start.
 */
import { InvalidArgumentError } from 'commander';
import { entryBytesOf } from './history/budget.js';
import type { CommonConfig, GatewaySettings, LogicSettings } from './config.js';

/** The most a push frame adds to its val as JSON text: type (the tag), a 128-character room, seq, and the WebSocket header. */
export const PUSH_FRAME_ENVELOPE = 256;
/** The most a push request body adds to its val: the field names, the tag and a 128-character room id or a wsId. */
export const PUSH_BODY_ENVELOPE = 512;
/** Form encoding writes a byte that is not a letter or digit as %XX: a body may take 3 bytes per byte of val. */
const FORM_ENCODING_GROWTH = 3;
/** An auth or refresh frame carries the whole JWT; tokens with many claims or RSA signatures reach a few KiB. */
const AUTH_FRAME_ROOM = 8 * 1024;
/** {"op":"join","room":"<128 characters>","id":<16 digits>} */
const JOIN_FRAME_BYTES = 173;
/** The longest room id (PROTOCOL.md §2), for a stream's bytes in history. */
const LONGEST_ROOM_BYTES = 128;

/** A push frame of a val of `valBytes` bytes that JSON need not escape. */
function plainPushFrame(valBytes: number): number {
  return valBytes + PUSH_FRAME_ENVELOPE;
}

/** Whether one push of a val of `maxValSize` bytes fills a send buffer of `sendBufferLimit` bytes by itself (also checked across processes: broker/redis/push-fit.ts). */
export function pushFillsSendBuffer(maxValSize: number, sendBufferLimit: number): boolean {
  return sendBufferLimit < plainPushFrame(maxValSize);
}

/** What a push that fills a send buffer by itself leads to, for the warning here and the cluster's. */
export const PUSH_FILLS_SEND_BUFFER = "a push of a val that size fills a client's send buffer by itself, and any push behind it closes the client as a slow consumer (4000)";

/** Refuses a --body-limit that no push of a val of --max-val-size bytes fits in. */
export function checkBodyLimit(logic: LogicSettings): void {
  const needed = logic.maxValSize + PUSH_BODY_ENVELOPE;
  if (logic.bodyLimit >= needed) return;
  throw new InvalidArgumentError(
    `--body-limit ${logic.bodyLimit} is below --max-val-size ${logic.maxValSize} plus a push's other fields (${PUSH_BODY_ENVELOPE} bytes): ` +
      `a val that size comes in a body --body-limit refuses with 413; set --body-limit to at least ${needed}, or lower --max-val-size`,
  );
}

/** Risky combinations of the logic flags. */
export function logicWarnings(logic: LogicSettings): string[] {
  const roomy = FORM_ENCODING_GROWTH * logic.maxValSize + PUSH_BODY_ENVELOPE;
  if (logic.bodyLimit >= roomy) return [];
  return [
    `--body-limit ${logic.bodyLimit} is below ${FORM_ENCODING_GROWTH} times --max-val-size ${logic.maxValSize}: a val near that size is refused 413 by --body-limit ` +
      `when it is sent form-encoded (%XX for each byte but letters and digits) or as JSON full of quotes; set --body-limit to at least ${roomy} to take any val --max-val-size allows`,
  ];
}

/** Risky combinations of the gateway flags. */
export function gatewayWarnings(gateway: GatewaySettings): string[] {
  const warnings: string[] = [];
  if (gateway.auth !== 'off' && gateway.maxPayload < AUTH_FRAME_ROOM) {
    warnings.push(
      `--max-payload ${gateway.maxPayload} with --auth ${gateway.auth}: an auth or refresh frame carries the whole JWT, and one larger than --max-payload closes its client with 1009; ` +
        `set --max-payload to at least ${AUTH_FRAME_ROOM} unless your tokens are known to be smaller`,
    );
  }
  const unused = (
    [
      ['--jwt-secret', gateway.jwtSecret],
      ['--jwt-public-key', gateway.jwtPublicKey],
      ['--jwt-audience', gateway.jwtAudience],
      ['--jwt-issuer', gateway.jwtIssuer],
    ] as const
  ).flatMap(([flag, value]) => (value === undefined ? [] : [flag]));
  if (gateway.auth === 'off' && unused.length > 0) {
    // given a key, an operator may well take clients to be checked: they are not, until --auth says so
    warnings.push(`${unused.join(', ')} given with --auth off (the default): client tokens are not checked and every client connects anonymously; set --auth required (or optional) to use them`);
  }
  if (gateway.allowClientJoin && gateway.maxPayload < JOIN_FRAME_BYTES) {
    warnings.push(
      `--max-payload ${gateway.maxPayload} with --allow-client-join: a join or leave frame naming a room id of 128 characters takes ${JOIN_FRAME_BYTES} bytes, and closes its client with 1009; ` +
        `set --max-payload to at least ${JOIN_FRAME_BYTES}`,
    );
  }
  return warnings;
}

/** Risky combinations across the halves of `roomcast start`: a push's val against the gateway's send buffer and the memory engine's history. */
export function serverWarnings(config: GatewaySettings & LogicSettings & CommonConfig): string[] {
  const warnings = [...gatewayWarnings(config), ...logicWarnings(config), ...sendBufferWarnings(config)];
  const historyOn = config.broker === 'memory' && config.historySize > 0 && config.historyTtl > 0 && config.historyMaxMemory > 0;
  const largest = entryBytesOf(config.maxValSize, LONGEST_ROOM_BYTES);
  if (historyOn && config.historyMaxMemory < largest) {
    warnings.push(
      `--history-max-memory ${config.historyMaxMemory} is below the ${largest} bytes history counts for a push of a val of --max-val-size ${config.maxValSize}: ` +
        `such a push is dropped from history at once, with every older one, so a resume after it says recovered:false; set --history-max-memory to at least ${largest}`,
    );
  }
  return warnings;
}

/**
 * A --send-buffer-limit that one or two pushes of a val of --max-val-size fill. Not refused: a lone frame over
 * the limit still goes out (src/gateway/connection.ts), so a client that reads each such push before the next works.
 */
function sendBufferWarnings(config: GatewaySettings & LogicSettings): string[] {
  const twoFrames = 2 * plainPushFrame(config.maxValSize);
  if (pushFillsSendBuffer(config.maxValSize, config.sendBufferLimit)) {
    return [
      `--send-buffer-limit ${config.sendBufferLimit} is below --max-val-size ${config.maxValSize} plus a push frame's envelope (${PUSH_FRAME_ENVELOPE} bytes): ` +
        `${PUSH_FILLS_SEND_BUFFER}; set --send-buffer-limit to at least ${twoFrames}, or lower --max-val-size`,
    ];
  }
  if (config.sendBufferLimit >= twoFrames) return [];
  return [
    `--send-buffer-limit ${config.sendBufferLimit} holds fewer than two pushes of a val of --max-val-size ${config.maxValSize}: ` +
      `a client that has not read one such push yet when the next arrives is closed as a slow consumer (4000); set --send-buffer-limit to at least ${twoFrames}`,
  ];
}
