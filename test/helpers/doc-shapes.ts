/**
 * Reads the answer shapes the reference writes in its route table, like
 * `{"uid","connections":[{"wsId","node"}]}`: an object names its fields, a field
 * may be followed by `:` and a value (an object, an array, or any other text up
 * to the next `,`, `]` or `}`), and nested objects are shapes of their own.
 */
export interface Shape {
  /** Each field, with the shape of its value when the doc gives one (an object, or an array of objects). */
  fields: Map<string, Shape | undefined>;
}

class Reader {
  private at = 0;
  constructor(private readonly text: string) {}

  private peek(): string {
    return this.text[this.at] ?? '';
  }

  private expect(char: string): void {
    if (this.peek() !== char) throw new Error(`expected ${char} at ${this.at} of ${this.text}`);
    this.at++;
  }

  private name(): string {
    this.expect('"');
    const end = this.text.indexOf('"', this.at);
    if (end < 0) throw new Error(`unterminated name in ${this.text}`);
    const name = this.text.slice(this.at, end);
    this.at = end + 1;
    return name;
  }

  object(): Shape {
    this.expect('{');
    const fields = new Map<string, Shape | undefined>();
    while (this.peek() !== '}') {
      const field = this.name();
      let value: Shape | undefined;
      if (this.peek() === ':') {
        this.at++;
        value = this.value();
      }
      fields.set(field, value);
      if (this.peek() === ',') this.at++;
    }
    this.expect('}');
    return { fields };
  }

  /** A value's shape: an object's, an array's first element's, or undefined for anything else (skipped). */
  private value(): Shape | undefined {
    if (this.peek() === '{') return this.object();
    if (this.peek() === '[') {
      this.at++;
      const element = this.value();
      while (this.peek() !== ']') {
        if (this.at >= this.text.length) throw new Error(`unterminated array in ${this.text}`);
        this.at++;
      }
      this.at++;
      return element;
    }
    while (this.at < this.text.length && !',]}'.includes(this.peek())) this.at++;
    return undefined;
  }
}

/** Every top-level shape written in backquotes in `cell` (`{...}`), in order. */
export function shapesIn(cell: string): Shape[] {
  return [...cell.matchAll(/`(\{[^`]*\})`/g)].map((m) => new Reader(m[1]).object());
}

type JsonSchema = { properties?: Record<string, JsonSchema>; items?: JsonSchema; anyOf?: JsonSchema[] };

/**
 * Where the documented shape and the JSON Schema of the answer disagree: each
 * field the doc names must be one the answer has, and the answer's fields must
 * all be named (optional ones too), at every level the doc describes.
 */
export function shapeMismatches(doc: Shape, schema: JsonSchema, where: string): string[] {
  const properties = schema.properties ?? {};
  const problems: string[] = [];
  for (const field of doc.fields.keys()) if (!(field in properties)) problems.push(`${where}: the doc names "${field}", which the answer does not have`);
  for (const [field, property] of Object.entries(properties)) {
    if (!doc.fields.has(field)) {
      problems.push(`${where}: the answer has "${field}", which the doc does not name`);
      continue;
    }
    const nested = doc.fields.get(field);
    const nestedSchema = property.items ?? property;
    if (nested !== undefined) problems.push(...shapeMismatches(nested, nestedSchema, `${where}.${field}`));
  }
  return problems;
}
