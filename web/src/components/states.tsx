// Loading, empty and error states, alike on every screen.
import { t } from "../strings";

export function Loading() {
  return (
    <p class="state loading" role="status">
      {t.common.loading}
    </p>
  );
}

export function Empty({ text }: { text: string }) {
  return <p class="state empty">{text}</p>;
}

export function Failure({ error, retry }: { error: string; retry?: () => void }) {
  return (
    <div class="state failure" role="alert">
      <p>
        {t.common.error}: {error}
      </p>
      {retry && (
        <button type="button" onClick={retry}>
          {t.common.retry}
        </button>
      )}
    </div>
  );
}
