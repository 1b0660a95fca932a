// Create or join a room; show its code, a link to share and the same link as a QR code, so a class
// can join from their own machines. The link is built by the page (lab-server.ts roomLink: the LAN
// origin the lab's server names, its signalling, the run settings); this panel says when the link
// would not reach other machines, and lets the teacher make joining tabs start training at once.
import QRCode from 'qrcode';
import { useEffect, useId, useState, type FormEvent } from 'react';
import { ConfigError, parseConfig } from '../lab/config';
import { linkReachProblem } from '../lab/lab-server';

export interface RoomPanelProps {
  /** The room this tab is in (or configured for); null or '' when none. */
  room: string | null;
  onCreate(): void;
  onJoin(code: string): void;
  /** Builds the shareable link; by default this page with ?room=CODE (and autostart=1 when asked). */
  linkFor?: (code: string, startOnOpen: boolean) => string;
  busy?: boolean;
}

export function defaultRoomLink(code: string, startOnOpen = false): string {
  const url = new URL(window.location.href);
  url.search = '';
  url.hash = '';
  url.searchParams.set('room', code);
  if (startOnOpen) url.searchParams.set('autostart', '1');
  return url.toString();
}

/** The room code rules are the config's: one place decides what a valid code is. */
function roomCodeError(code: string): string | null {
  if (code === '') return 'Enter a room code.';
  try {
    parseConfig([['room', code]]);
    return null;
  } catch (e) {
    return e instanceof ConfigError ? e.message : String(e);
  }
}

export function RoomPanel({ room, onCreate, onJoin, linkFor = defaultRoomLink, busy }: RoomPanelProps) {
  const [code, setCode] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [qrSvg, setQrSvg] = useState<string | null>(null);
  const [startOnOpen, setStartOnOpen] = useState(false);
  const inputId = useId();
  const link = room ? linkFor(room, startOnOpen) : null;
  const reachProblem = link ? linkReachProblem(link) : null;

  useEffect(() => {
    setQrSvg(null);
    if (!link) return;
    let live = true;
    QRCode.toString(link, { type: 'svg', margin: 1, errorCorrectionLevel: 'M' })
      .then((svg) => live && setQrSvg(svg))
      .catch((e: unknown) => live && setError(`QR code failed: ${String(e)}`));
    return () => {
      live = false;
    };
  }, [link]);

  const join = (e: FormEvent) => {
    e.preventDefault();
    const trimmed = code.trim();
    const problem = roomCodeError(trimmed);
    setError(problem);
    if (!problem) onJoin(trimmed);
  };

  return (
    <section className="panel room" aria-labelledby="room-title">
      <h2 id="room-title">Room</h2>
      {room ? (
        <div className="room-current">
          <p>
            Room code: <strong data-testid="room-code">{room}</strong>
          </p>
          <p className="room-link">
            <a href={link!} data-testid="room-link">
              {link}
            </a>{' '}
            <button type="button" onClick={() => void navigator.clipboard?.writeText(link!)}>
              Copy link
            </button>
          </p>
          <label className="start-on-open">
            <input type="checkbox" checked={startOnOpen} onChange={(e) => setStartOnOpen(e.target.checked)} /> Tabs opening the link
            start training at once
          </label>
          {reachProblem && (
            <p className="muted room-reach" data-testid="room-reach">
              {reachProblem}
            </p>
          )}
          {qrSvg && (
            <img
              className="qr"
              src={`data:image/svg+xml;charset=utf-8,${encodeURIComponent(qrSvg)}`}
              alt={`QR code of the room link ${link}`}
              width={180}
              height={180}
            />
          )}
        </div>
      ) : (
        <p className="muted">Solo: not in a room. Create one, or join with a code.</p>
      )}
      <div className="room-actions">
        <button type="button" onClick={onCreate} disabled={busy}>
          Create room
        </button>
        <form onSubmit={join} className="join-form">
          <label htmlFor={inputId}>Room code</label>
          <input
            id={inputId}
            value={code}
            onChange={(e) => setCode(e.target.value)}
            autoComplete="off"
            spellCheck={false}
            aria-invalid={error !== null}
          />
          <button type="submit" disabled={busy}>
            Join
          </button>
        </form>
        {error && (
          <p role="alert" className="error">
            {error}
          </p>
        )}
      </div>
    </section>
  );
}
