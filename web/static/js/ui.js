// Small DOM helpers shared by the views: element builder, money formatting,
// message boxes, an autocomplete widget and the rating stars.
// Everything is built with createElement/textContent: no innerHTML with data.

export const CURRENCY = '€';

/**
 * h('a', {href: '/x', class: 'btn', dataset: {test: 'foo'}, onclick: fn}, 'text', child, [more])
 * Attributes starting with "on" become listeners; null/false attributes are skipped.
 */
export function h(tag, attrs, ...children) {
  const el = tag === 'svg' || tag === 'path' || tag === 'use' || tag === 'symbol'
    ? document.createElementNS('http://www.w3.org/2000/svg', tag)
    : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k === 'test') el.dataset.test = v;
    else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'value' && 'value' in el) el.value = v;
    else if (k === 'class') el.setAttribute('class', v);
    else el.setAttribute(k, v === true ? '' : v);
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

/** Numbers from the services are JS numbers; always show two decimals. */
export const money = (n) => `${CURRENCY}${Number(n || 0).toFixed(2)}`;

export const productImage = (sku) => `/images/${encodeURIComponent(sku)}.png`;

/** Linkable path for a category / product / search (segments encoded). */
export const paths = {
  category: (c) => `/category/${encodeURIComponent(c)}`,
  product: (sku) => `/product/${encodeURIComponent(sku)}`,
  search: (t) => `/search/${encodeURIComponent(t)}`,
};

/** A message box. kind: 'error' | 'success' | 'info'. */
export function message(kind, text, extra) {
  return h('div', {
    class: `msg msg-${kind}`,
    role: kind === 'error' ? 'alert' : 'status',
    test: kind === 'error' ? 'error' : 'message',
  }, h('span', { class: 'msg-icon', 'aria-hidden': 'true' }),
  h('span', { class: 'msg-text', test: 'message-text' }, text), extra || null);
}

/** Replace the content of a slot element with a message (or clear it with text = ''). */
export function say(slot, kind, text, extra) {
  slot.replaceChildren(text ? message(kind, text, extra) : '');
}

export function spinner(label = 'Loading…') {
  return h('div', { class: 'loading', role: 'status', test: 'loading' },
    h('span', { class: 'spin', 'aria-hidden': 'true' }), label);
}

export function debounce(fn, ms) {
  let t;
  return (...a) => { clearTimeout(t); t = setTimeout(() => fn(...a), ms); };
}

/** Disable a button while an async action runs. */
export async function busy(button, fn) {
  button.disabled = true;
  button.classList.add('is-busy');
  try { return await fn(); } finally {
    button.disabled = false;
    button.classList.remove('is-busy');
  }
}

let autoId = 0;
/**
 * Suggestions under a text input.
 *   source(term) -> Promise<items>   (results are cached per cacheKey(term))
 *   label(item) -> Node|string       render of one suggestion
 *   onSelect(item)                   chosen by click, Enter or Tab
 *   onEnter(term)                    Enter with no suggestion highlighted (optional)
 *   minChars, delay (ms), itemTest (data-test of each item), cacheKey(term)
 * Returns { close(), clear() }.
 */
export function autocomplete(input, opts) {
  const o = { minChars: 1, delay: 200, itemTest: 'suggestion', cacheKey: (t) => t, ...opts };
  const listId = `ac-${++autoId}`;
  const list = h('ul', { class: 'ac-list', id: listId, role: 'listbox', hidden: true, test: `${o.itemTest}-list` });
  if (input.parentNode) input.after(list);
  input.setAttribute('role', 'combobox');
  input.setAttribute('aria-autocomplete', 'list');
  input.setAttribute('aria-controls', listId);
  input.setAttribute('aria-expanded', 'false');
  input.setAttribute('autocomplete', 'off');
  const cache = new Map();
  let items = [];
  let active = -1;
  let seq = 0;

  function close() {
    list.hidden = true;
    list.replaceChildren();
    input.setAttribute('aria-expanded', 'false');
    input.removeAttribute('aria-activedescendant');
    items = [];
    active = -1;
  }
  function highlight(i) {
    active = i;
    [...list.children].forEach((li, j) => li.setAttribute('aria-selected', String(j === i)));
    if (i >= 0) input.setAttribute('aria-activedescendant', `${listId}-${i}`);
    else input.removeAttribute('aria-activedescendant');
  }
  function choose(i) {
    const item = items[i];
    close();
    if (item !== undefined) o.onSelect(item);
  }
  function show(found) {
    items = found;
    active = -1;
    // The input may have been put into the page after the widget was set up.
    if (list.previousSibling !== input && input.parentNode) input.after(list);
    list.replaceChildren(...found.map((it, i) => h('li', {
      id: `${listId}-${i}`, role: 'option', class: 'ac-item', test: o.itemTest, 'aria-selected': 'false',
      // mousedown, not click: runs before the input loses focus.
      onmousedown: (e) => { e.preventDefault(); choose(i); },
      onmousemove: () => { if (active !== i) highlight(i); },
    }, o.label(it))));
    list.hidden = found.length === 0;
    input.setAttribute('aria-expanded', String(!list.hidden));
  }
  const lookup = debounce(async (term) => {
    const my = ++seq;
    const key = o.cacheKey(term);
    try {
      let found = cache.get(key);
      if (!found) {
        found = await o.source(term);
        if (!Array.isArray(found)) found = [];
        cache.set(key, found);
      }
      if (my === seq && input.value.trim() === term && document.activeElement === input) show(found);
    } catch (e) {
      if (my === seq) close();
      if (o.onError) o.onError(e);
    }
  }, o.delay);

  input.addEventListener('input', () => {
    const term = input.value.trim();
    if (o.onInput) o.onInput(term);
    if (term.length < o.minChars) { seq++; close(); return; }
    lookup(term);
  });
  input.addEventListener('keydown', (e) => {
    if (e.key === 'ArrowDown' && items.length) {
      e.preventDefault(); highlight((active + 1) % items.length);
    } else if (e.key === 'ArrowUp' && items.length) {
      e.preventDefault(); highlight(active <= 0 ? items.length - 1 : active - 1);
    } else if (e.key === 'Enter') {
      if (active >= 0) { e.preventDefault(); choose(active); } else if (o.onEnter) {
        e.preventDefault(); seq++; close(); o.onEnter(input.value.trim());
      }
    } else if (e.key === 'Escape') {
      close();
    } else if (e.key === 'Tab' && active >= 0) {
      choose(active);
    }
  });
  input.addEventListener('blur', () => setTimeout(close, 120));
  return { close, clear: () => { cache.clear(); close(); } };
}

const STAR = 'M12 2.6l2.9 6.1 6.6.8-4.9 4.6 1.3 6.6L12 17.4l-5.9 3.3 1.3-6.6L2.5 9.5l6.6-.8z';

/** One star: `fill` is 0..1 (part shown in colour). */
export function starIcon(fill) {
  const pct = Math.max(0, Math.min(1, fill)) * 100;
  return h('span', { class: 'star', 'aria-hidden': 'true' },
    h('svg', { viewBox: '0 0 24 24', class: 'star-empty' }, h('path', { d: STAR })),
    h('span', { class: 'star-fill', style: `width:${pct}%` },
      h('svg', { viewBox: '0 0 24 24' }, h('path', { d: STAR }))));
}
