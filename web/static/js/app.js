// RoboShop storefront: shopper identity, cart state, header/footer and the
// history-API router. The pages themselves live in views.js.
import * as api from './api.js';
import { h, money, paths, autocomplete, productImage, say } from './ui.js';
import * as views from './views.js';

const KEY_ANON = 'roboshop.anonymousId';
const KEY_USER = 'roboshop.user';
const EMPTY_CART = Object.freeze({ total: 0, tax: 0, items: [] });

function load(key) {
  try { return localStorage.getItem(key); } catch { return null; }
}
function store(key, value) {
  try {
    if (value === null) localStorage.removeItem(key); else localStorage.setItem(key, value);
  } catch { /* private mode: identity lasts for this page only */ }
}

// ---------------------------------------------------------------- state ----

export const state = {
  anonId: load(KEY_ANON),                  // "anonymous-N" from the user service
  user: (() => {                           // {name, email} once logged in
    try { const u = JSON.parse(load(KEY_USER)); return u && typeof u.name === 'string' ? u : null; } catch { return null; }
  })(),
  cart: EMPTY_CART,
};

/** The id carts and payments are keyed by: the user name, else the anonymous id. */
export const identity = () => (state.user ? state.user.name : state.anonId);

let idRequest = null;
/** The shopper id, asking the user service for an anonymous one the first time. */
export async function ensureId() {
  if (identity()) return identity();
  if (!idRequest) {
    idRequest = api.user.uniqueid().then((r) => {
      if (!r || typeof r.uuid !== 'string') throw new Error('the user service sent no id');
      state.anonId = r.uuid;
      store(KEY_ANON, r.uuid);
      renderIdentity();
      return r.uuid;
    }).finally(() => { idRequest = null; });
  }
  return idRequest;
}

/**
 * The gateway refused the stored id (contract D18): 401 = this browser has no session any more
 * (it expired, or the browser was closed), 403 = the session does not own the id.
 */
export const sessionLost = (e) => e instanceof api.ApiError && (e.status === 401 || e.status === 403);

/** After sessionLost: forget the stored identity (and the user) and start over with a new anonymous id. */
export async function resetIdentity() {
  state.user = null;
  store(KEY_USER, null);
  state.anonId = null;
  store(KEY_ANON, null);
  setCart(EMPTY_CART);
  renderIdentity();
  await ensureId();
}

// Bumped by every setCart: a cart read that was overtaken by a newer answer
// (say the boot-time reload finishing after the cart view removed its shipping
// line) must not put the older cart back.
let cartSeq = 0;

export function setCart(c) {
  cartSeq++;
  state.cart = c && Array.isArray(c.items) ? c : EMPTY_CART;
  renderCartTotal();
}
export const emptyCart = () => ({ total: 0, tax: 0, items: [] });

/** Reload the cart of the current identity (404 = no cart = empty). */
export async function refreshCart() {
  const id = identity();
  if (!id) { setCart(EMPTY_CART); return state.cart; }
  const seq = cartSeq;
  let c;
  try {
    c = await api.cart.get(id);
  } catch (e) {
    if (sessionLost(e) && id === identity()) { await resetIdentity(); return state.cart; }
    if (!(e instanceof api.ApiError && e.status === 404)) throw e;
    c = EMPTY_CART;
  }
  if (seq === cartSeq && id === identity()) setCart(c);
  return state.cart;
}

/**
 * After login or register: the anonymous cart follows the user (contract D15).
 * rename copies cart <anonymous-N> to <name>; 404 (no anonymous cart) is fine.
 * An anonymous cart known to be empty is not copied, so it can't wipe a cart the
 * user filled in an earlier visit.
 */
export async function becomeUser(u) {
  const anon = state.anonId;
  const hadItems = state.cart.items.length > 0;
  state.user = { name: u.name, email: u.email || '' };
  store(KEY_USER, JSON.stringify(state.user));
  renderIdentity();
  if (anon && anon !== u.name && hadItems) {
    try { await api.cart.rename(anon, u.name); } catch (e) {
      if (!(e instanceof api.ApiError && e.status === 404)) console.warn('cart rename failed', e);
    }
  }
  try { await refreshCart(); } catch (e) { console.warn('cart reload failed', e); }
}

/** Log out: back to a fresh anonymous shopper with an empty cart. */
export async function logout() {
  try { await api.user.logout(); } catch { /* the session expires by itself */ }
  state.user = null;
  store(KEY_USER, null);
  const old = state.anonId;
  state.anonId = null;
  try { await ensureId(); } catch {
    state.anonId = old;           // user service down: keep the previous anonymous id
    store(KEY_ANON, old);
  }
  renderIdentity();
  try { await refreshCart(); } catch { setCart(EMPTY_CART); }
}

// --------------------------------------------------------------- header ----

const $ = (sel) => document.querySelector(sel);

function renderCartTotal() {
  const total = Number(state.cart.total) || 0;
  const count = state.cart.items.filter((i) => i.sku !== 'SHIP').reduce((n, i) => n + (Number(i.qty) || 0), 0);
  const el = $('#cart-total');
  if (el) el.textContent = total === 0 ? 'Empty' : money(total);
  const badge = $('#cart-count');
  if (badge) { badge.textContent = String(count); badge.hidden = count === 0; }
  const link = $('#nav-cart');
  if (link) link.setAttribute('aria-label', total === 0 ? 'Cart: empty' : `Cart: ${count} items, ${money(total)}`);
}

function renderIdentity() {
  const id = identity();
  const footerId = $('#user-id');
  if (footerId) footerId.textContent = id || '…';
  const who = $('#nav-login-label');
  if (who) who.textContent = state.user ? state.user.name : 'Sign in';
  const link = $('#nav-login');
  if (link) link.classList.toggle('is-user', !!state.user);
}

function setupSearch() {
  const form = $('#search-form');
  const input = $('#search');
  const go = (text) => {
    const t = api.cleanSearch(text);
    if (t) { input.blur(); navigate(paths.search(t)); }
  };
  form.addEventListener('submit', (e) => { e.preventDefault(); go(input.value); });
  autocomplete(input, {
    minChars: 2,
    delay: 250,
    itemTest: 'search-suggestion',
    cacheKey: (t) => api.cleanSearch(t).toLowerCase(),
    source: async (t) => (api.cleanSearch(t) ? (await api.catalogue.search(t)).slice(0, 6) : []),
    label: (p) => [
      h('img', { src: productImage(p.sku), alt: '', width: 36, height: 36, loading: 'lazy' }),
      h('span', { class: 'ac-name' }, p.name),
      h('span', { class: 'ac-meta' }, money(p.price)),
    ],
    onSelect: (p) => { input.value = ''; input.blur(); navigate(paths.product(p.sku)); },
    onEnter: go,
  });
  // "/" focuses the search box, like many shops.
  document.addEventListener('keydown', (e) => {
    if (e.key === '/' && !/^(INPUT|TEXTAREA|SELECT)$/.test(document.activeElement.tagName)) {
      e.preventDefault(); input.focus();
    }
  });
}

// --------------------------------------------------------------- router ----

const routes = [
  [/^\/$/, views.home, 'home'],
  [/^\/category\/([^/]+)\/?$/, views.category, 'category'],
  [/^\/product\/([^/]+)\/?$/, views.product, 'product'],
  [/^\/search\/([^/]*)\/?$/, views.search, 'search'],
  [/^\/cart\/?$/, views.cart, 'cart'],
  [/^\/shipping\/?$/, views.shipping, 'shipping'],
  [/^\/payment\/?$/, views.payment, 'payment'],
  [/^\/login\/?$/, views.login, 'login'],
];

const decode = (s) => { try { return decodeURIComponent(s); } catch { return s; } };

export function navigate(path, { replace = false } = {}) {
  if (path === location.pathname && !replace) { render(); return; }
  if (replace) history.replaceState(null, '', path); else history.pushState(null, '', path);
  render();
}

let renderSeq = 0;
async function render() {
  const path = location.pathname.replace(/\/{2,}/g, '/');
  let view = views.notFound, params = [], name = 'not-found';
  for (const [re, fn, n] of routes) {
    const m = re.exec(path);
    if (m) { view = fn; params = m.slice(1).map(decode); name = n; break; }
  }
  const main = $('#view');
  // Each visit draws into a fresh container; a slow answer for a page the
  // shopper already left lands in a detached node and is never seen.
  const root = h('div', { class: `view view-${name}`, 'data-view': name });
  main.replaceChildren(root);
  main.dataset.view = name;
  document.body.dataset.view = name;
  for (const a of document.querySelectorAll('[data-nav]')) {
    a.classList.toggle('is-active', a.dataset.nav === name);
  }
  const my = ++renderSeq;
  window.scrollTo(0, 0);
  try {
    await view(root, ...params);
  } catch (e) {
    console.error(e);
    if (my === renderSeq) say(root, 'error', api.describeError(e, 'This page could not be shown'));
  }
  if (my === renderSeq) {
    const h1 = root.querySelector('h1');
    document.title = h1 ? `${h1.textContent} · RoboShop` : 'RoboShop';
  }
}

function interceptLinks() {
  document.addEventListener('click', (e) => {
    if (e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
    const a = e.target.closest('a[href]');
    if (!a || a.target || a.hasAttribute('download')) return;
    const url = new URL(a.href, location.href);
    if (url.origin !== location.origin || /^\/(api|images)\//.test(url.pathname)) return;
    e.preventDefault();
    navigate(url.pathname);
  });
  window.addEventListener('popstate', render);
}

// ----------------------------------------------------------------- boot ----

async function boot() {
  renderIdentity();
  renderCartTotal();
  setupSearch();
  interceptLinks();
  render();
  // Identity first (the cart is keyed by it), then the cart total for the header.
  try {
    await ensureId();
    await refreshCart();
  } catch (e) {
    say($('#notice'), 'error', api.describeError(e, 'Could not start your shopping session'));
  }
}

boot();
