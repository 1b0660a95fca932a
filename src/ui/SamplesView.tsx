// Text the GPT generated during training, newest first, so the room can watch it learn to spell.
import type { SampleText } from '../shared/events';

export function SamplesView({ samples }: { samples: readonly SampleText[] }) {
  const newestFirst = [...samples].reverse();
  return (
    <section className="panel samples" aria-labelledby="samples-title">
      <h2 id="samples-title">Samples</h2>
      {newestFirst.length === 0 ? (
        <p className="muted">The text model writes a sample at each evaluation.</p>
      ) : (
        <ol className="samples-list" reversed>
          {newestFirst.map((s, i) => (
            <li key={`${s.step}-${i}`} data-step={s.step}>
              <div className="muted small">step {s.step}</div>
              <pre className="sample-text">{s.text}</pre>
            </li>
          ))}
        </ol>
      )}
    </section>
  );
}
