// The pages of the storefront. Each view gets a fresh, already attached
// container `root` and fills it; see the router in app.js.
import * as api from './api.js';
import {
  h, money, paths, productImage, message, say, spinner, busy, autocomplete, starIcon,
} from './ui.js';
import {
  state, identity, ensureId, setCart, emptyCart, refreshCart, becomeUser, logout, navigate,
  sessionLost, resetIdentity,
} from './app.js';

const VAT_RATE = '20%';
const MAX_QTY = 10;

// ------------------------------------------------------------ pieces ----

function stockInfo(p) {
  const n = Number(p.instock);
  if (!n) return { text: 'Out of stock', cls: 'out' };
  if (n <= 5) return { text: `Only ${n} left`, cls: 'low' };
  return { text: 'In stock', cls: 'in' };
}

function productCard(p) {
  const stock = stockInfo(p);
  return h('a', { class: 'card', href: paths.product(p.sku), test: 'product-card', dataset: { sku: p.sku } },
    h('div', { class: 'card-img' },
      h('img', { src: productImage(p.sku), alt: p.name, width: 400, height: 400, loading: 'lazy' })),
    h('div', { class: 'card-body' },
      h('h3', { class: 'card-title' }, p.name),
      h('div', { class: 'card-foot' },
        h('span', { class: 'price' }, money(p.price)),
        h('span', { class: `stock stock-${stock.cls}` }, stock.text))));
}

function productGrid(list) {
  return h('div', { class: 'grid', test: 'product-grid' }, list.map(productCard));
}

function categoryChips(categories, current) {
  return h('nav', { class: 'chips', 'aria-label': 'Categories', test: 'categories' },
    h('a', { class: `chip${current === null ? ' is-active' : ''}`, href: '/', test: 'category-link', dataset: { category: '' } }, 'All robots'),
    categories.map((c) => h('a', {
      class: `chip${c === current ? ' is-active' : ''}`, href: paths.category(c),
      test: 'category-link', dataset: { category: c }, 'aria-current': c === current ? 'page' : null,
    }, c)));
}

let categoriesCache = null;
async function categories() {
  if (!categoriesCache) {
    categoriesCache = api.catalogue.categories().catch((e) => { categoriesCache = null; throw e; });
  }
  return categoriesCache;
}

function pageHead(title, sub) {
  return h('header', { class: 'page-head' }, h('h1', null, title), sub ? h('p', { class: 'lead' }, sub) : null);
}

function emptyState(title, text, action) {
  return h('div', { class: 'empty', test: 'empty' },
    h('img', { src: '/images/placeholder.png', alt: '', width: 160, height: 160 }),
    h('h2', null, title), text ? h('p', null, text) : null, action || null);
}

const shopLink = () => h('a', { class: 'btn btn-primary', href: '/' }, 'Browse robots');

/** Lines of a cart without the shipping line. */
const goods = (c) => c.items.filter((i) => i.sku !== 'SHIP');
const shipLine = (c) => c.items.find((i) => i.sku === 'SHIP');

function totals(c, { tax = true } = {}) {
  const itemsTotal = goods(c).reduce((s, i) => s + (Number(i.subtotal) || 0), 0);
  const ship = shipLine(c);
  return h('dl', { class: 'totals' },
    h('div', null, h('dt', null, 'Subtotal'), h('dd', { test: 'cart-subtotal' }, money(itemsTotal))),
    ship ? h('div', null, h('dt', null, 'Shipping'), h('dd', { test: 'cart-shipping' }, money(ship.subtotal))) : null,
    h('div', { class: 'grand' }, h('dt', null, 'Total'), h('dd', { test: 'cart-grand-total', id: 'cart-grand-total' }, money(c.total))),
    tax ? h('div', { class: 'vat' }, h('dt', null, `includes VAT (${VAT_RATE})`), h('dd', { test: 'cart-tax' }, money(c.tax))) : null);
}

// -------------------------------------------------------------- home ----

export async function home(root) {
  const cats = h('div', { class: 'slot' }, spinner('Loading categories…'));
  const grid = h('div', { class: 'slot' }, spinner('Loading robots…'));
  root.append(
    h('section', { class: 'hero' },
      h('div', { class: 'hero-text' },
        h('p', { class: 'eyebrow' }, 'The friendly robot store'),
        h('h1', null, 'A robot for every job'),
        h('p', { class: 'lead' }, 'Helpers for the farm, the clinic, the mine and the office. Hand-picked, fully charged, delivered from our warehouse in Solingen.'),
        h('div', { class: 'hero-actions' },
          h('a', { class: 'btn btn-light', href: paths.category('Robot') }, 'Shop robots'),
          h('a', { class: 'btn btn-ghost', href: paths.category('Artificial Intelligence') }, 'Meet the AIs'))),
      h('img', { class: 'hero-img', src: productImage('STAN-1'), alt: 'Stan, the shop robot, waving', width: 400, height: 400 })),
    h('section', { class: 'section' }, h('h2', null, 'Browse by category'), cats),
    h('section', { class: 'section' }, h('h2', null, 'All robots'), grid));

  const [c, p] = await Promise.allSettled([categories(), api.catalogue.products()]);
  if (c.status === 'fulfilled') cats.replaceChildren(categoryChips(c.value, null));
  else say(cats, 'error', api.describeError(c.reason, 'Categories could not be loaded'));
  if (p.status === 'fulfilled') {
    grid.replaceChildren(p.value.length ? productGrid(p.value) : emptyState('No robots yet', 'The shelves are being stocked.'));
  } else {
    say(grid, 'error', api.describeError(p.reason, 'Products could not be loaded'));
  }
}

// ---------------------------------------------------------- category ----

export async function category(root, name) {
  const chips = h('div', { class: 'slot' });
  const grid = h('div', { class: 'slot' }, spinner());
  root.append(pageHead(name, null), chips, grid);
  categories().then((c) => chips.replaceChildren(categoryChips(c, name)), () => {});
  try {
    const list = await api.catalogue.productsIn(name);
    grid.replaceChildren(list.length
      ? productGrid(list)
      : emptyState('Nothing here yet', `No robots in “${name}” right now.`, shopLink()));
  } catch (e) {
    say(grid, 'error', api.describeError(e, 'This category could not be loaded'));
  }
}

// ------------------------------------------------------------ search ----

export async function search(root, text) {
  const q = api.cleanSearch(text);
  const input = document.getElementById('search');
  if (input && document.activeElement !== input) input.value = q;
  const out = h('div', { class: 'slot' }, spinner('Searching…'));
  root.append(pageHead(`Results for “${q}”`, null), out);
  if (!q) { out.replaceChildren(emptyState('Type something to search for', null, shopLink())); return; }
  try {
    const list = await api.catalogue.search(q);
    if (list.length) {
      out.replaceChildren(h('p', { class: 'muted', test: 'search-count' },
        `${list.length} ${list.length === 1 ? 'robot' : 'robots'} found`), productGrid(list));
    } else {
      out.replaceChildren(h('div', { test: 'search-empty' },
        emptyState(`Sorry, nothing matches “${q}”`, 'Try another word, like “droid” or “medical”.', shopLink())));
    }
  } catch (e) {
    say(out, 'error', api.describeError(e, 'The search failed'));
  }
}

// ----------------------------------------------------------- product ----

export async function product(root, sku) {
  root.append(spinner());
  let p;
  try {
    p = await api.catalogue.product(sku);
  } catch (e) {
    if (e instanceof api.ApiError && e.status === 404 && e.service === 'catalogue' && e.plainText) {
      root.replaceChildren(pageHead('Robot not found', null),
        emptyState(`We have no robot called “${sku}”`, 'It may have been retired.', shopLink()));
    } else {
      root.replaceChildren(message('error', api.describeError(e, 'This robot could not be loaded')));
    }
    return;
  }
  const stock = stockInfo(p);
  const out = Number(p.instock) === 0;
  const qty = h('input', {
    id: 'add-qty', test: 'add-qty', type: 'number', min: 1, max: MAX_QTY, value: '1',
    inputmode: 'numeric', 'aria-label': 'Quantity', disabled: out,
  });
  const addBtn = h('button', { id: 'add-to-cart', test: 'add-to-cart', class: 'btn btn-primary btn-lg', type: 'submit', disabled: out },
    out ? 'Out of stock' : 'Add to cart');
  const note = h('div', { class: 'slot', 'aria-live': 'polite', test: 'add-message' });
  const cat = Array.isArray(p.categories) && p.categories.length ? p.categories[0] : null;

  const form = h('form', { class: 'buy', onsubmit: (e) => { e.preventDefault(); add(); } },
    h('div', { class: 'stepper' },
      h('button', { type: 'button', class: 'step', 'aria-label': 'One less', disabled: out, onclick: () => bump(-1) }, '−'),
      qty,
      h('button', { type: 'button', class: 'step', 'aria-label': 'One more', disabled: out, onclick: () => bump(1) }, '+')),
    addBtn);

  function bump(d) {
    const n = Math.min(MAX_QTY, Math.max(1, (parseInt(qty.value, 10) || 1) + d));
    qty.value = String(n);
  }
  async function add() {
    const n = parseInt(qty.value, 10);
    if (!Number.isInteger(n) || n < 1 || n > MAX_QTY) {
      say(note, 'error', `Choose a quantity from 1 to ${MAX_QTY}.`);
      return;
    }
    await busy(addBtn, async () => {
      try {
        const id = await ensureId();
        try {
          setCart(await api.cart.add(id, p.sku, n));
        } catch (e) {
          if (!sessionLost(e)) throw e;
          await resetIdentity(); // the stored id is not this browser's any more: a new one, once
          setCart(await api.cart.add(identity(), p.sku, n));
        }
        say(note, 'success', `Added ${n} × ${p.name} to your cart.`,
          h('a', { href: '/cart', class: 'msg-link', test: 'view-cart' }, 'View cart →'));
      } catch (e) {
        say(note, 'error', api.describeError(e, `Could not add ${p.name} to the cart`));
      }
    });
  }

  root.replaceChildren(h('article', { class: 'product', test: 'product', dataset: { sku: p.sku } },
    h('div', { class: 'product-media' },
      h('img', { id: 'product-image', src: productImage(p.sku), alt: p.name, width: 400, height: 400 })),
    h('div', { class: 'product-info' },
      h('nav', { class: 'crumbs', 'aria-label': 'Breadcrumb' },
        h('a', { href: '/' }, 'Shop'), cat ? [' / ', h('a', { href: paths.category(cat), test: 'category-link', dataset: { category: cat } }, cat)] : null),
      h('h1', { id: 'product-name', test: 'product-name' }, p.name),
      h('p', { class: 'sku muted' }, `SKU ${p.sku}`),
      ratingBlock(p.sku),
      h('p', { class: 'product-price', id: 'product-price', test: 'product-price' }, money(p.price)),
      h('p', { class: `stock stock-${stock.cls}`, id: 'product-stock', test: 'product-stock' }, stock.text),
      h('p', { class: 'product-desc', test: 'product-description' }, p.description || ''),
      form,
      note)));
}

/** Average, count and 1–5 star buttons; stays hidden when ratings is not deployed. */
function ratingBlock(sku) {
  const box = h('section', { class: 'rating', id: 'rating', test: 'rating', hidden: true, 'aria-label': 'Customer rating' });
  const note = h('div', { class: 'rating-note', 'aria-live': 'polite', test: 'rating-message' });
  let current = { avg: 0, count: 0 };
  let sending = false;

  function draw() {
    const stars = h('div', { class: 'stars', role: 'group', 'aria-label': 'Rate this robot' });
    // Only the fill width changes: replacing the icons under the pointer would
    // swallow the click.
    const paint = (upto) => [...stars.children].forEach((b, i) => {
      const fill = upto ? (i < upto ? 1 : 0) : Math.max(0, Math.min(1, current.avg - i));
      b.querySelector('.star-fill').style.width = `${fill * 100}%`;
      b.classList.toggle('is-hover', !!upto && i < upto);
    });
    for (let n = 1; n <= 5; n++) {
      stars.append(h('button', {
        type: 'button', class: 'star-btn', test: 'rate-star', id: `rate-${n}`, dataset: { score: String(n) },
        'aria-label': `Rate ${n} star${n > 1 ? 's' : ''}`, title: `Rate ${n} of 5`,
        onmouseenter: () => paint(n), onfocus: () => paint(n),
        onclick: () => rate(n),
      }, starIcon(0)));
    }
    stars.addEventListener('mouseleave', () => paint(0));
    stars.addEventListener('focusout', () => paint(0));
    paint(0);
    const summary = current.avg
      ? h('span', { class: 'rating-avg', test: 'rating-average', id: 'rating-average' },
        h('strong', null, Number(current.avg).toFixed(1)),
        ` · ${current.count} ${current.count === 1 ? 'vote' : 'votes'}`)
      : h('span', { class: 'rating-avg muted', test: 'rating-average', id: 'rating-average' }, 'No votes yet');
    box.replaceChildren(h('div', { class: 'rating-row' }, stars, summary), note);
  }

  async function load() {
    try {
      const r = await api.ratings.fetch(sku);
      if (!r || typeof r !== 'object') throw new Error('no rating');
      current = { avg: Number(r.avg_rating) || 0, count: Number(r.rating_count) || 0 };
      draw();
      box.hidden = false;
    } catch (e) {
      box.hidden = true;    // ratings service absent or broken: no block, no noise
      console.info('ratings unavailable', e);
    }
  }

  async function rate(n) {
    if (sending) return;
    sending = true;
    try {
      await api.ratings.rate(sku, n);
      await load();
      say(note, 'success', 'Thank you for your feedback');
    } catch (e) {
      if (e instanceof api.ApiError && e.absent) { box.hidden = true; return; }
      say(note, 'error', api.describeError(e, 'Your rating could not be saved'));
    } finally {
      sending = false;
    }
  }

  load();
  return box;
}

// -------------------------------------------------------------- cart ----

export async function cart(root) {
  root.append(pageHead('Your cart', null));
  const body = h('div', { class: 'slot' }, spinner('Loading your cart…'));
  const note = h('div', { class: 'slot', 'aria-live': 'polite' });
  root.append(note, body);
  let c;
  try {
    await ensureId();
    c = await refreshCart();
    // A shipping line must be chosen again after the cart changes: drop it when
    // it is the last line (as the reference UI does).
    const last = c.items[c.items.length - 1];
    if (last && last.sku === 'SHIP') {
      setCart(await api.cart.update(identity(), 'SHIP', 0));
      c = state.cart;
    }
  } catch (e) {
    say(body, 'error', api.describeError(e, 'Your cart could not be loaded'));
    return;
  }

  // Changes run one after the other, in the order the shopper made them.
  let queue = Promise.resolve();
  const change = (sku, q) => {
    queue = queue.then(async () => {
      try {
        setCart(await api.cart.update(identity(), sku, q));
        say(note, '', '');
      } catch (e) {
        say(note, 'error', api.describeError(e, 'The cart could not be updated'));
        try { await refreshCart(); } catch { /* keep what we have */ }
      }
      draw();
    });
    return queue;
  };

  function row(item) {
    const ship = item.sku === 'SHIP';
    const qty = ship
      ? h('span', { class: 'qty-fixed' }, String(item.qty))
      : h('input', {
        type: 'number', min: 0, max: MAX_QTY, value: String(item.qty), class: 'qty', inputmode: 'numeric',
        test: 'cart-qty', id: `qty-${item.sku}`, dataset: { sku: item.sku }, 'aria-label': `Quantity of ${item.name}`,
        onchange: (e) => {
          const n = Number(e.target.value);
          if (!Number.isInteger(n) || n < 0 || n > MAX_QTY) {
            say(note, 'error', `Quantity must be a whole number from 0 to ${MAX_QTY} (0 removes the item).`);
            e.target.value = String(item.qty);
            return;
          }
          if (n !== item.qty) change(item.sku, n);
        },
      });
    return h('tr', { test: 'cart-item', dataset: { sku: item.sku } },
      h('td', { class: 'thumb' }, ship
        ? h('span', { class: 'ship-icon', 'aria-hidden': 'true' }, '🚚')
        : h('img', { src: productImage(item.sku), alt: '', width: 56, height: 56, loading: 'lazy' })),
      h('td', { class: 'name' }, ship ? item.name : h('a', { href: paths.product(item.sku) }, item.name),
        h('div', { class: 'muted small' }, ship ? 'Shipping' : `${money(item.price)} each`)),
      h('td', { class: 'qty-cell' }, qty),
      h('td', { class: 'num', test: 'cart-item-subtotal' }, money(item.subtotal)),
      h('td', { class: 'act' }, h('button', {
        type: 'button', class: 'icon-btn', test: 'cart-remove', dataset: { sku: item.sku },
        'aria-label': `Remove ${item.name}`, title: 'Remove',
        onclick: (e) => { e.currentTarget.disabled = true; change(item.sku, 0); },
      }, '✕')));
  }

  function draw() {
    const cur = state.cart;
    if (!cur.items.length) {
      body.replaceChildren(h('div', { test: 'cart-empty' },
        emptyState('Your cart is empty', 'Find a robot you like and add it here.', shopLink())));
      return;
    }
    body.replaceChildren(h('div', { class: 'cart-layout' },
      h('div', { class: 'panel' },
        h('table', { class: 'cart-table', test: 'cart-table' },
          h('thead', null, h('tr', null,
            h('th', { colspan: 2 }, 'Item'), h('th', null, 'Qty'), h('th', { class: 'num' }, 'Subtotal'), h('th', null, h('span', { class: 'sr-only' }, 'Remove')))),
          h('tbody', null, cur.items.map(row)))),
      h('aside', { class: 'panel summary' },
        h('h2', null, 'Summary'),
        totals(cur),
        h('a', { class: 'btn btn-primary btn-block', href: '/shipping', test: 'checkout', id: 'checkout' }, 'Choose shipping →'),
        h('a', { class: 'btn btn-ghost btn-block', href: '/' }, 'Continue shopping'))));
  }
  draw();
}

// ---------------------------------------------------------- shipping ----

export async function shipping(root) {
  root.append(pageHead('Shipping', 'Where should we send your robots?'));
  const body = h('div', { class: 'slot' }, spinner());
  root.append(body);
  let codes;
  try {
    await ensureId();
    const [c, k] = await Promise.all([refreshCart(), api.shipping.codes()]);
    codes = Array.isArray(k) ? k : [];
    if (!goods(c).length) {
      body.replaceChildren(emptyState('Your cart is empty', 'Add a robot before choosing shipping.', shopLink()));
      return;
    }
  } catch (e) {
    say(body, 'error', api.describeError(e, e.service === 'shipping' ? 'Countries could not be loaded' : 'Your cart could not be loaded'));
    return;
  }

  let selected = null;     // {uuid, name} of the chosen city
  let quote = null;        // {distance, cost} from calc
  const note = h('div', { class: 'slot', 'aria-live': 'polite', test: 'shipping-message' });
  const country = h('select', { id: 'country', test: 'country-select', required: true },
    h('option', { value: '' }, 'Choose a country…'),
    codes.map((k) => h('option', { value: k.code }, k.name)));
  const city = h('input', {
    id: 'city', test: 'city-input', type: 'text', placeholder: 'Start typing a city (3 letters or more)',
    disabled: true, spellcheck: 'false',
  });
  const calcBtn = h('button', { type: 'button', id: 'calculate', test: 'calculate', class: 'btn btn-secondary', disabled: true }, 'Calculate');
  const result = h('div', { class: 'quote', id: 'shipping-quote', test: 'shipping-quote', hidden: true });
  const confirmBtn = h('button', { type: 'button', id: 'confirm-shipping', test: 'confirm-shipping', class: 'btn btn-primary btn-block', disabled: true }, 'Confirm and continue to payment');
  const chosen = h('p', { class: 'chosen muted', test: 'city-chosen' });
  const countryName = () => (codes.find((k) => k.code === country.value) || {}).name || '';

  const reset = () => { quote = null; result.hidden = true; confirmBtn.disabled = true; };
  country.addEventListener('change', () => {
    selected = null; city.value = ''; chosen.textContent = ''; reset(); cities.clear();
    city.disabled = !country.value;
    calcBtn.disabled = true;
    if (country.value) city.focus();
  });
  const cities = autocomplete(city, {
    minChars: 3,
    delay: 150,
    itemTest: 'city-suggestion',
    cacheKey: (t) => `${country.value}/${t.toLowerCase()}`,
    source: (t) => api.shipping.match(country.value, t),
    label: (c) => [h('span', { class: 'ac-name' }, c.name), c.region ? h('span', { class: 'ac-meta' }, c.region) : null],
    onInput: () => { if (selected) { selected = null; chosen.textContent = ''; calcBtn.disabled = true; reset(); } },
    onSelect: (c) => {
      selected = { uuid: c.uuid, name: c.name };
      city.value = c.name;
      chosen.textContent = `Deliver to ${c.name}, ${countryName()}`;
      calcBtn.disabled = false;
      reset();
      say(note, '', '');
      calcBtn.focus();
    },
    onError: (e) => say(note, 'error', api.describeError(e, 'Cities could not be looked up')),
  });

  calcBtn.addEventListener('click', () => busy(calcBtn, async () => {
    if (!selected) return;
    try {
      quote = await api.shipping.calc(selected.uuid);
      result.replaceChildren(
        h('div', null, h('span', { class: 'muted' }, 'Distance'), h('strong', { id: 'shipping-distance', test: 'shipping-distance' }, `${quote.distance} km`)),
        h('div', null, h('span', { class: 'muted' }, 'Cost'), h('strong', { id: 'shipping-cost', test: 'shipping-cost' }, money(quote.cost))));
      result.hidden = false;
      confirmBtn.disabled = false;
      say(note, '', '');
    } catch (e) {
      reset();
      say(note, 'error', api.describeError(e, 'Shipping could not be calculated'));
    }
  }).then(() => { calcBtn.disabled = !selected; }));

  confirmBtn.addEventListener('click', () => busy(confirmBtn, async () => {
    if (!quote || !selected) return;
    try {
      const c = await api.shipping.confirm(identity(), {
        distance: quote.distance, cost: quote.cost, location: `${countryName()} ${selected.name}`,
      });
      if (c && Array.isArray(c.items)) setCart(c); else await refreshCart();
      navigate('/payment');
    } catch (e) {
      say(note, 'error', api.describeError(e, 'Shipping could not be confirmed'));
    }
  }));

  const ship = shipLine(state.cart);
  body.replaceChildren(h('div', { class: 'checkout-layout' },
    h('form', { class: 'panel form', onsubmit: (e) => e.preventDefault() },
      ship ? h('p', { class: 'muted' }, `Currently: ${ship.name} (${money(ship.subtotal)}). Choose again to change it.`) : null,
      h('label', { for: 'country' }, 'Country'), country,
      h('label', { for: 'city' }, 'City'), h('div', { class: 'ac-wrap' }, city), chosen,
      h('div', { class: 'row' }, calcBtn),
      result, confirmBtn, note),
    h('aside', { class: 'panel summary' }, h('h2', null, 'Your order'), miniCart(state.cart), totals(state.cart, { tax: false }))));
}

function miniCart(c) {
  return h('ul', { class: 'mini' }, c.items.map((i) => h('li', { dataset: { sku: i.sku } },
    h('span', null, i.sku === 'SHIP' ? i.name : `${i.qty} × ${i.name}`), h('span', { class: 'num' }, money(i.subtotal)))));
}

// ----------------------------------------------------------- payment ----

let lastOrder = null;   // {orderid, cart, who} of the order just placed

export async function payment(root) {
  // Coming back to /payment right after paying (cart still empty): show the receipt again.
  if (lastOrder && lastOrder.who === identity() && !state.cart.items.length) { confirmation(root, lastOrder); return; }
  lastOrder = null;
  root.append(pageHead('Payment', 'Check your order and pay.'));
  const body = h('div', { class: 'slot' }, spinner());
  root.append(body);
  let c;
  try {
    await ensureId();
    c = await refreshCart();
  } catch (e) {
    say(body, 'error', api.describeError(e, 'Your cart could not be loaded'));
    return;
  }
  if (!goods(c).length) {
    body.replaceChildren(emptyState('Your cart is empty', 'Nothing to pay for yet.', shopLink()));
    return;
  }
  const note = h('div', { class: 'slot', 'aria-live': 'polite', test: 'payment-message' });
  const hasShip = !!shipLine(c);
  const payBtn = h('button', { type: 'button', id: 'pay-now', test: 'pay-now', class: 'btn btn-primary btn-block btn-lg', disabled: !hasShip },
    `Pay now ${money(c.total)}`);
  payBtn.addEventListener('click', async () => {
    const snapshot = JSON.parse(JSON.stringify(state.cart));   // what was bought, for the receipt
    payBtn.disabled = true;
    payBtn.classList.add('is-busy');
    try {
      const r = await api.payment.pay(identity(), state.cart);
      if (!r || typeof r.orderid !== 'string') throw new Error('the payment service sent no order id');
      lastOrder = { orderid: r.orderid, cart: snapshot, who: identity() };
      setCart(emptyCart());
      root.replaceChildren();
      confirmation(root, lastOrder);
      window.scrollTo(0, 0);
    } catch (e) {
      say(note, 'error', `ERROR placing order. ${api.describeError(e, 'Payment failed')}`);
      payBtn.disabled = false;     // the shopper may try again
    } finally {
      payBtn.classList.remove('is-busy');
    }
  });
  body.replaceChildren(h('div', { class: 'checkout-layout' },
    h('div', { class: 'panel' },
      h('h2', null, 'Order summary'),
      h('table', { class: 'cart-table compact', test: 'payment-items' },
        h('tbody', null, c.items.map((i) => h('tr', { dataset: { sku: i.sku } },
          h('td', null, i.name), h('td', { class: 'num' }, i.sku === 'SHIP' ? '' : `× ${i.qty}`),
          h('td', { class: 'num' }, money(i.subtotal)))))),
      totals(c)),
    h('aside', { class: 'panel summary' },
      h('h2', null, 'Pay'),
      hasShip
        ? h('p', { class: 'muted' }, `Paying as ${identity()}. Your card is not charged: this is a demo shop.`)
        : message('info', 'Choose shipping before paying.', h('a', { href: '/shipping', class: 'msg-link' }, 'Choose shipping →')),
      payBtn, note)));
}

function confirmation(root, order) {
  const c = order.cart;
  root.append(h('section', { class: 'panel done', test: 'order-confirmation' },
    h('div', { class: 'done-badge', 'aria-hidden': 'true' }, '✓'),
    h('h1', null, 'Order placed'),
    h('p', { class: 'lead' }, 'Thank you! Your robots are being packed.'),
    h('p', null, 'Order id ', h('code', { id: 'order-id', test: 'order-id' }, order.orderid)),
    h('table', { class: 'cart-table compact', test: 'order-items' },
      h('tbody', null, c.items.map((i) => h('tr', { dataset: { sku: i.sku } },
        h('td', null, i.name), h('td', { class: 'num' }, i.sku === 'SHIP' ? '' : `× ${i.qty}`),
        h('td', { class: 'num' }, money(i.subtotal)))))),
    totals(c),
    h('div', { class: 'row center' },
      h('a', { class: 'btn btn-primary', href: '/', onclick: () => { lastOrder = null; } }, 'Continue shopping'),
      state.user ? h('a', { class: 'btn btn-ghost', href: '/login', onclick: () => { lastOrder = null; } }, 'See your orders') : null)));
}

// ------------------------------------------------------------- login ----

export async function login(root) {
  if (state.user) { await account(root); return; }
  root.append(pageHead('Sign in', 'Sign in to keep your cart and see your orders.'));

  const field = (id, label, attrs) => [h('label', { for: id }, label), h('input', { id, test: id, ...attrs })];
  const loginNote = h('div', { class: 'slot', 'aria-live': 'polite', test: 'login-message' });
  const loginBtn = h('button', { type: 'submit', id: 'login-submit', test: 'login-submit', class: 'btn btn-primary btn-block' }, 'Sign in');
  const loginForm = h('form', { class: 'panel form', test: 'login-form', novalidate: true },
    h('h2', null, 'I have an account'),
    field('login-name', 'Name', { type: 'text', autocomplete: 'username', required: true }),
    field('login-password', 'Password', { type: 'password', autocomplete: 'current-password', required: true }),
    loginBtn, loginNote);
  loginForm.addEventListener('submit', (e) => {
    e.preventDefault();
    const name = loginForm.querySelector('#login-name').value.trim();
    const password = loginForm.querySelector('#login-password').value;
    if (!name || !password) { say(loginNote, 'error', 'Please enter your name and password.'); return; }
    busy(loginBtn, async () => {
      try {
        const u = await api.user.login(name, password);
        await ensureId().catch(() => null);
        await becomeUser({ name: u && typeof u.name === 'string' ? u.name : name, email: u && u.email });
        navigate('/login', { replace: true });
      } catch (err) {
        say(loginNote, 'error', api.describeError(err, 'Sign-in failed'));
      }
    });
  });

  const regNote = h('div', { class: 'slot', 'aria-live': 'polite', test: 'register-message' });
  const regBtn = h('button', { type: 'submit', id: 'register-submit', test: 'register-submit', class: 'btn btn-secondary btn-block' }, 'Create account');
  const regForm = h('form', { class: 'panel form', test: 'register-form', novalidate: true },
    h('h2', null, 'I am new here'),
    field('register-name', 'Name', { type: 'text', autocomplete: 'username', required: true }),
    field('register-email', 'E-mail', { type: 'email', autocomplete: 'email', required: true }),
    field('register-password', 'Password', { type: 'password', autocomplete: 'new-password', required: true }),
    field('register-confirm', 'Repeat password', { type: 'password', autocomplete: 'new-password', required: true }),
    regBtn, regNote);
  regForm.addEventListener('submit', (e) => {
    e.preventDefault();
    const v = (id) => regForm.querySelector(`#${id}`).value;
    const name = v('register-name').trim();
    const email = v('register-email').trim();
    const password = v('register-password');
    const confirm = v('register-confirm');
    if (!name || !email || !password) { say(regNote, 'error', 'Please fill in name, e-mail and password.'); return; }
    if (password !== confirm) { say(regNote, 'error', 'The passwords do not match.'); return; }
    busy(regBtn, async () => {
      try {
        await api.user.register(name, email, password);
        await ensureId().catch(() => null);
        await becomeUser({ name, email });
        navigate('/login', { replace: true });
      } catch (err) {
        say(regNote, 'error', api.describeError(err, 'Registration failed'));
      }
    });
  });

  root.append(h('div', { class: 'two-col' }, loginForm, regForm));
  // No autofocus on touch screens: it would pop up the keyboard over the page.
  if (window.matchMedia && matchMedia('(pointer: fine)').matches) loginForm.querySelector('#login-name').focus();
}

const noOrders = () => h('p', { class: 'muted', id: 'history-empty', test: 'history-empty' }, 'No orders yet');

async function account(root) {
  const u = state.user;
  const hist = h('div', { class: 'slot' }, spinner('Loading your orders…'));
  const logoutBtn = h('button', { type: 'button', id: 'logout', test: 'logout', class: 'btn btn-ghost' }, 'Sign out');
  logoutBtn.addEventListener('click', () => busy(logoutBtn, async () => {
    lastOrder = null;
    await logout();
    navigate('/login', { replace: true });
  }));
  root.append(
    h('header', { class: 'page-head account-head' },
      h('div', null,
        h('h1', null, `Hello, ${u.name}`),
        h('p', { class: 'lead', test: 'account' }, 'Signed in as ', h('strong', { id: 'account-name', test: 'account-name' }, u.name),
          u.email ? ` (${u.email})` : '')),
      logoutBtn),
    h('section', { class: 'panel' }, h('h2', null, 'Your orders'), hist));
  try {
    const doc = await api.user.history(u.name);
    const orders = doc && Array.isArray(doc.history) ? doc.history.slice().reverse() : [];
    if (!orders.length) { hist.replaceChildren(noOrders()); return; }
    hist.replaceChildren(h('table', { class: 'history', id: 'history-table', test: 'history-table' },
      h('thead', null, h('tr', null, h('th', null, 'Order'), h('th', null, 'Items'), h('th', { class: 'num' }, 'Total'))),
      h('tbody', null, orders.map((o) => {
        const items = (o.cart && Array.isArray(o.cart.items) ? o.cart.items : []).filter((i) => i.sku !== 'SHIP');
        return h('tr', { test: 'history-row', dataset: { orderid: String(o.orderid || '') } },
          h('td', null, h('code', { test: 'history-orderid' }, String(o.orderid || '—'))),
          h('td', { test: 'history-items' }, items.map((i) => `${i.qty} × ${i.name}`).join(', ') || '—'),
          h('td', { class: 'num', test: 'history-total' }, money(o.cart && o.cart.total)));
      }))));
  } catch (e) {
    if (sessionLost(e)) { // signed out elsewhere, or the session expired: sign in again
      await resetIdentity().catch(() => null);
      navigate('/login');
    } else if (e instanceof api.ApiError && e.status === 404 && (e.plainText || !e.text)) {
      hist.replaceChildren(noOrders());
    } else {
      say(hist, 'error', api.describeError(e, 'Your orders could not be loaded'));
    }
  }
}

// --------------------------------------------------------- not found ----

export async function notFound(root) {
  root.append(pageHead('Page not found', null),
    emptyState('This page wandered off', 'The robot you are looking for is not here.', shopLink()));
}
