import type { Answer } from '../api';

/** An API answer as it came: status and JSON body. */
export function AnswerView({ answer, testId }: { answer: Answer<unknown>; testId: string }) {
  return (
    <pre class={answer.status === 200 ? 'answer ok' : 'answer failed'} data-testid={testId}>
      {answer.status} {JSON.stringify(answer.body, null, 2)}
    </pre>
  );
}
