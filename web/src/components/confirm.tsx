// A confirmation asked in the page (a <dialog>), so the keyboard and screen readers follow it.
import { useEffect, useRef } from "preact/hooks";
import { t } from "../strings";

export interface Ask {
  text: string;
  action: () => void;
}

export function Confirm({ ask, onClose }: { ask: Ask | null; onClose: () => void }) {
  const ref = useRef<HTMLDialogElement>(null);
  useEffect(() => {
    const dialog = ref.current;
    if (!dialog) return;
    if (ask && !dialog.open) dialog.showModal();
    if (!ask && dialog.open) dialog.close();
  }, [ask]);
  return (
    <dialog ref={ref} class="confirm" onClose={onClose}>
      <p>{ask?.text}</p>
      <div class="actions">
        <button type="button" onClick={onClose}>
          {t.common.cancel}
        </button>
        <button
          type="button"
          class="danger"
          onClick={() => {
            ask?.action();
            onClose();
          }}
        >
          {t.common.confirm}
        </button>
      </div>
    </dialog>
  );
}
