import { useEffect, useState } from 'preact/hooks';
import { AuthError, getData, type RoomDetail, type RoomList } from '../api';
import { poll } from '../poll';

const REFRESH_MS = 2000;
const PAGE = 200;

interface Props {
  apiKey: string | undefined;
  onAuth: (error: AuthError) => void;
  onInspect: (wsId: string) => void;
}

export function Rooms({ apiKey, onAuth, onInspect }: Props) {
  const [search, setSearch] = useState('');
  const [list, setList] = useState<RoomList>();
  const [selected, setSelected] = useState<string>();
  const [members, setMembers] = useState<RoomDetail>();
  const [error, setError] = useState<string>();

  useEffect(
    () =>
      poll(async (current) => {
        try {
          const list = await getData<RoomList>(apiKey, `/rooms?${new URLSearchParams({ contains: search, limit: String(PAGE) })}`);
          const members = selected === undefined ? undefined : await getData<RoomDetail>(apiKey, `/rooms/${encodeURIComponent(selected)}?limit=${PAGE}`);
          // an answer to an older search (or selection) can land after the newer one's
          if (!current()) return;
          setList(list);
          setMembers(members);
          setError(undefined);
        } catch (err) {
          if (!current()) return;
          if (err instanceof AuthError) onAuth(err);
          else setError(err instanceof Error ? err.message : String(err));
        }
      }, REFRESH_MS),
    [apiKey, search, selected],
  );

  return (
    <section class="card">
      <h2>Rooms</h2>
      <input type="search" placeholder="search room ids" aria-label="search rooms" data-testid="room-search" value={search} onInput={(e) => setSearch(e.currentTarget.value)} />
      {error !== undefined && <p class="error">{error}</p>}
      {list !== undefined && (
        <>
          <p class="muted small" data-testid="room-total">
            {list.total} room{list.total === 1 ? '' : 's'}
            {search === '' ? '' : ` matching “${search}”`}
            {list.total > list.rooms.length ? `, first ${list.rooms.length} shown` : ''}
          </p>
          <table class="rooms" data-testid="room-list">
            <thead>
              <tr>
                <th>room</th>
                <th class="num">members</th>
              </tr>
            </thead>
            <tbody>
              {list.rooms.map(({ room, members: count }) => (
                <tr key={room} class={room === selected ? 'selected' : ''} data-room={room} onClick={() => setSelected(room === selected ? undefined : room)}>
                  <td>{room}</td>
                  <td class="num">{count}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </>
      )}
      {members !== undefined && (
        <div class="members" data-testid="room-members">
          <h3>
            Members of {members.room} ({members.members})
          </h3>
          <ul>
            {members.wsIds.map((wsId) => (
              <li key={wsId}>
                <button type="button" class="link" onClick={() => onInspect(wsId)}>
                  {wsId}
                </button>
              </li>
            ))}
          </ul>
        </div>
      )}
    </section>
  );
}
