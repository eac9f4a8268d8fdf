import { render } from "preact";
import { useEffect, useState } from "preact/hooks";
import { get, post, type SessionInfo } from "./api.js";
import { Fleet } from "./fleet.js";
import { Device } from "./device.js";
import { Rollouts } from "./rollouts.js";
import { Query } from "./query.js";
import { Login } from "./login.js";
import "uplot/dist/uPlot.min.css";
import "./app.css";

/** `#/fleet`, `#/device/<id>`, `#/rollouts`, `#/query`. */
function useRoute(): string[] {
  const parse = (): string[] => (location.hash.replace(/^#\/?/, "") || "fleet").split("/").map(decodeURIComponent);
  const [route, setRoute] = useState(parse);
  useEffect(() => {
    const on = (): void => setRoute(parse());
    window.addEventListener("hashchange", on);
    return () => window.removeEventListener("hashchange", on);
  }, []);
  return route;
}

function App() {
  const [session, setSession] = useState<SessionInfo | null | undefined>(undefined);
  const route = useRoute();
  useEffect(() => {
    get<SessionInfo>("/api/session").then(setSession, () => setSession(null));
    const out = (): void => setSession(null);
    window.addEventListener("canopy:logout", out);
    return () => window.removeEventListener("canopy:logout", out);
  }, []);
  if (session === undefined) return <p class="muted">loading…</p>;
  if (session === null) return <Login onLogin={setSession} />;
  const [page, arg] = route;
  const nav = (href: string, label: string, on: boolean) => (
    <a href={href} class={on ? "on" : ""}>
      {label}
    </a>
  );
  return (
    <>
      <header>
        <b>Canopy</b>
        <nav>
          {nav("#/fleet", "Fleet", page === "fleet" || page === "device")}
          {nav("#/rollouts", "Rollouts", page === "rollouts")}
          {nav("#/query", "Query", page === "query")}
        </nav>
        <span class="grow" />
        {session.readOnly && (
          <span class="badge" data-testid="read-only">
            read-only
          </span>
        )}
        <button class="link" onClick={() => void post("/api/logout", {}).finally(() => setSession(null))}>
          log out
        </button>
      </header>
      <main>
        {page === "device" && arg ? (
          <Device id={arg} session={session} />
        ) : page === "rollouts" ? (
          <Rollouts session={session} />
        ) : page === "query" ? (
          <Query />
        ) : (
          <Fleet />
        )}
      </main>
    </>
  );
}

const root = document.getElementById("app");
if (root) render(<App />, root);
