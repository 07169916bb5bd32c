// The deny-list in force in one proxy: one writer (the config watch), read at every handshake, and observed by
// listeners so a new list closes the open connections of peers it bans.
import { type DenyList, EMPTY_DENY_LIST, sameDenyList } from './deny-list.js';

export class DenyListHolder {
  #current: DenyList = EMPTY_DENY_LIST;
  readonly #listeners = new Set<(list: DenyList) => void>();

  get current(): DenyList {
    return this.#current;
  }

  /** Installs a list; listeners run only when its content differs from the one in force. */
  set(list: DenyList): void {
    if (sameDenyList(this.#current, list)) return;
    this.#current = list;
    for (const l of this.#listeners) l(list);
  }

  subscribe(listener: (list: DenyList) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }
}
