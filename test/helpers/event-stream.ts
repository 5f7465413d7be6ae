/** Reads a text/event-stream (GET /stats/stream) over real HTTP. */
export interface StreamEvent {
  event: string;
  data: Record<string, unknown>;
  receivedAt: number;
}

/** Reads `count` events of a text/event-stream, then stops reading. */
export async function readEvents(url: string, count: number, headers: Record<string, string> = {}): Promise<{ status: number; type: string | null; events: StreamEvent[] }> {
  const res = await fetch(url, { headers });
  const events: StreamEvent[] = [];
  if (res.body === null || res.status !== 200) return { status: res.status, type: res.headers.get('content-type'), events };
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  while (events.length < count) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += value;
    let end;
    while ((end = buffer.indexOf('\n\n')) !== -1 && events.length < count) {
      const block = buffer.slice(0, end).split('\n');
      buffer = buffer.slice(end + 2);
      const event = block.find((l) => l.startsWith('event: '))?.slice(7) ?? 'message';
      const data = block.find((l) => l.startsWith('data: '))?.slice(6) ?? '{}';
      events.push({ event, data: JSON.parse(data) as Record<string, unknown>, receivedAt: Date.now() });
    }
  }
  await reader.cancel();
  return { status: res.status, type: res.headers.get('content-type'), events };
}
