import { useState } from "preact/hooks";
import { post, type SessionInfo } from "./api.js";

export function Login({ onLogin }: { onLogin: (s: SessionInfo) => void }) {
  const [token, setToken] = useState("");
  const [error, setError] = useState("");
  const submit = (e: Event): void => {
    e.preventDefault();
    post<SessionInfo>("/api/login", { token: token.trim() }).then(onLogin, (err: Error) => setError(err.message));
  };
  return (
    <form class="login" onSubmit={submit}>
      <h1>Canopy console</h1>
      <p class="muted">
        Paste a console token (<code>canopy console token</code>) or open the link <code>canopy console open</code> prints.
      </p>
      <input type="password" placeholder="console token" value={token} onInput={(e) => setToken((e.target as HTMLInputElement).value)} autocomplete="off" />
      <button type="submit">Log in</button>
      {error && <p class="error">{error}</p>}
    </form>
  );
}
