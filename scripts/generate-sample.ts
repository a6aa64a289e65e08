/**
 * Generates the Contoso Tasks sample (samples/contoso-tasks/): directory.json, teams.json, tasks.jsonl.
 * Deterministic: a seeded PRNG and name-derived GUIDs, so the same seed always gives byte-identical files.
 *
 * Node 20 cannot run TypeScript directly, so this runs through vitest:
 *   UPDATE_SAMPLE=1 npx vitest run test/mapping/sample.test.ts   (rewrites the files)
 *   npx vitest run test/mapping/sample.test.ts                   (checks the committed files match the generator)
 */
import { createHash } from 'node:crypto';

export interface SampleOptions {
  seed?: number;
  count?: number;
}

export interface SampleUser {
  id: string;
  userPrincipalName: string;
  displayName: string;
  guest: boolean;
}

export interface SampleTask {
  ticketId: string;
  title: string;
  description: string;
  status: string;
  priority: number;
  createdBy: string;
  assignedTo: string;
  team: string;
  tags: string[];
  createdDate: string;
  lastEditedDate: string;
  visibility: 'team' | 'restricted' | 'public';
  allowedUsers?: string[];
  deniedUsers?: string[];
  /** Files under samples/contoso-tasks/attachments (mapping.attachments): a name, or {path, name}. */
  attachments?: (string | { path: string; name?: string })[];
}

/** A stable, name-derived GUID (UUID v5 layout over SHA-1), so ids never change between runs. */
export function sampleGuid(name: string): string {
  const h = createHash('sha1').update(`contoso-tasks:${name}`).digest();
  h[6] = (h[6]! & 0x0f) | 0x50;
  h[8] = (h[8]! & 0x3f) | 0x80;
  const x = h.subarray(0, 16).toString('hex');
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20, 32)}`;
}

/** The three sample files, as the exact text to write. */
export function generateSample(
  options: SampleOptions = {},
): Record<'directory.json' | 'teams.json' | 'tasks.jsonl', string> {
  // mulberry32
  let state = (options.seed ?? 20250601) >>> 0;
  function rand() {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  const pick = <T>(list: readonly T[]): T => list[Math.floor(rand() * list.length)]!;
  const int = (lo: number, hi: number) => lo + Math.floor(rand() * (hi - lo + 1));
  function sample<T>(list: readonly T[], n: number): T[] {
    const copy = [...list];
    const out: T[] = [];
    while (out.length < n && copy.length) out.push(copy.splice(Math.floor(rand() * copy.length), 1)[0]!);
    return out;
  }

  // ------------------------------------------------------------------------------------------------ directory
  const people: [string, string][] = [
    ['adele', 'Adele Vance'],
    ['megan', 'Megan Bowen'],
    ['alex', 'Alex Wilber'],
    ['diego', 'Diego Siciliani'],
    ['lynne', 'Lynne Robbins'],
    ['isaiah', 'Isaiah Langer'],
    ['johanna', 'Johanna Lorenz'],
    ['lee', 'Lee Gu'],
    ['nestor', 'Nestor Wilke'],
    ['patti', 'Patti Fernandez'],
    ['pradeep', 'Pradeep Gupta'],
    ['grady', 'Grady Archie'],
    ['miriam', 'Miriam Graham'],
    ['henrietta', 'Henrietta Mueller'],
    ['joni', 'Joni Sherman'],
  ];
  const users: SampleUser[] = people.map(([nick, displayName]) => ({
    id: sampleGuid(`user:${nick}`),
    userPrincipalName: `${nick}@contoso.com`,
    displayName,
    guest: false,
  }));
  users.push({
    id: sampleGuid('user:guest:jordan'),
    userPrincipalName: 'jordan.miller_fabrikam.com#EXT#@contoso.com',
    displayName: 'Jordan Miller (Fabrikam)',
    guest: true,
  });
  const U = Object.fromEntries(
    users.map((u) => [u.userPrincipalName.split('@')[0]!.split('_')[0]!.split('.')[0]!, u]),
  ) as Record<string, SampleUser>;
  const u = (nick: string): SampleUser => U[nick]!;
  const groups = [
    {
      id: sampleGuid('group:finance-approvers'),
      displayName: 'Finance Approvers',
      members: [u('adele').id, u('miriam').id],
    },
    {
      id: sampleGuid('group:it-operations'),
      displayName: 'IT Operations',
      members: [u('pradeep').id, u('henrietta').id, u('joni').id],
    },
    {
      id: sampleGuid('group:all-managers'),
      displayName: 'All Managers',
      members: [u('grady').id, u('adele').id, u('lynne').id, sampleGuid('group:finance-approvers')],
    },
  ];
  const G = { financeApprovers: groups[0]!, itOperations: groups[1]! };

  // ------------------------------------------------------------------------------------------------ teams
  const user = (x: SampleUser) => ({ id: x.id, type: 'user' });
  const teams = [
    {
      id: 'payments',
      displayName: 'Payments',
      description: 'Card processing, payouts and reconciliation',
      members: [user(u('adele')), user(u('megan')), user(u('isaiah'))],
    },
    {
      id: 'logistics',
      displayName: 'Logistics',
      description: 'Warehouses, carriers and shipments',
      members: [user(u('alex')), user(u('nestor')), user(u('lee'))],
    },
    {
      id: 'hronboarding',
      displayName: 'HR Onboarding',
      description: 'New hires, equipment and first weeks',
      members: [user(u('lynne')), user(u('patti')), user(u('johanna')), user(u('jordan'))],
    },
    {
      id: 'itsupport',
      displayName: 'IT Support',
      description: 'Devices, accounts and networks (includes the IT Operations Entra group)',
      members: [user(u('diego')), user(u('pradeep')), { id: G.itOperations.id, type: 'group' }],
    },
    {
      id: 'finance',
      displayName: 'Finance',
      description: 'Finance department: the Payments team plus the Finance Approvers group',
      members: [
        { id: 'payments', type: 'externalGroup' },
        { id: G.financeApprovers.id, type: 'group' },
        user(u('miriam')),
      ],
    },
    {
      id: 'leadership',
      displayName: 'Leadership',
      description: 'Sees the Finance tickets (nested) and the escalations',
      members: [{ id: 'finance', type: 'externalGroup' }, user(u('grady'))],
    },
  ];
  const teamUsers: Record<string, SampleUser[]> = {
    payments: [u('adele'), u('megan'), u('isaiah')],
    logistics: [u('alex'), u('nestor'), u('lee')],
    hronboarding: [u('lynne'), u('patti'), u('johanna')],
    itsupport: [u('diego'), u('pradeep'), u('henrietta'), u('joni')],
    finance: [u('miriam'), u('adele'), u('megan')],
  };

  // ------------------------------------------------------------------------------------------------ tickets
  const topics: Record<string, { titles: string[]; details: string[]; tags: string[] }> = {
    payments: {
      titles: [
        'Error in the payment gateway for {merchant}',
        'Refund stuck in pending for order {order}',
        'Card declines spike on {merchant} checkout',
        'Payout to {merchant} delayed by the bank',
        'Chargeback dispute needs evidence for order {order}',
        'Currency conversion off by a cent on {currency} invoices',
        'Duplicate charge reported by a customer of {merchant}',
        '3-D Secure challenge loops on mobile checkout',
        'Settlement file from the acquirer is missing for {day}',
        'Reconcile the {currency} ledger after the gateway outage',
      ],
      details: [
        'The gateway returns HTTP 502 for roughly {pct}% of authorisations since {day}.',
        'The customer was charged twice and the second capture was not voided automatically.',
        'Finance needs the transaction ids and the acquirer reference numbers before Friday.',
        'Retries succeed after a few seconds, which points at a timeout on the processor side.',
        'The settlement report shows a difference of {amount} {currency} against our ledger.',
        'Affected merchants: {merchant}. No data loss, but payouts are on hold until this is fixed.',
      ],
      tags: ['payments', 'gateway', 'refunds', 'chargeback', 'reconciliation', 'checkout', 'payouts', 'fraud'],
    },
    logistics: {
      titles: [
        'Shipment {order} stuck at the {city} hub',
        'Carrier label API rejects addresses with accents',
        'Forklift maintenance overdue at the {city} warehouse',
        'Inventory count mismatch for SKU {sku}',
        'Late deliveries to {city} after the route change',
        'Cold chain sensor offline on truck {truck}',
        'Pallet scanner in bay {bay} drops barcodes',
        'Customs paperwork missing for container {container}',
        'Return-to-sender rate up for {city} postcodes',
        'Pick list printing twice in the {city} warehouse',
      ],
      details: [
        'The tracking page has shown "in transit" for {days} days without a scan.',
        'The carrier confirmed the parcel is in their depot but it has no onward booking.',
        'Stock on hand is {qty} units in the system, but the cycle count found {qty2}.',
        'Drivers report the new route adds about {mins} minutes per stop in the city centre.',
        'Temperature logs stop at {time}; the load may need to be inspected before delivery.',
        'The warehouse team has a manual workaround, but it slows picking by roughly {pct}%.',
      ],
      tags: ['logistics', 'shipping', 'warehouse', 'carrier', 'inventory', 'customs', 'returns', 'fleet'],
    },
    hronboarding: {
      titles: [
        'Onboarding checklist for {name}, starting {day}',
        'Laptop not ready for new hire {name}',
        'Badge access missing for {name} at the {city} office',
        'Welcome pack translation for the {city} office',
        'Buddy assignment for the {month} intake',
        'Payroll setup pending for {name}',
        'Mandatory training not assigned to new starters',
        'Relocation paperwork for {name} moving to {city}',
        'Update the first-week agenda for engineering hires',
        'Contract signature stuck in the e-sign workflow for {name}',
      ],
      details: [
        '{name} starts on {day} and still has no account in the HR system.',
        'The hiring manager asked for the equipment to be shipped to the home address.',
        'The welcome session is booked, but the meeting room in {city} is double-booked.',
        'Benefits enrolment closes {days} days after the start date; please prioritise.',
        'The background check came back clear; the offer letter can be countersigned.',
        'Please confirm the cost centre before the purchase order for the laptop is raised.',
      ],
      tags: ['onboarding', 'hr', 'new-hire', 'equipment', 'training', 'payroll', 'access', 'relocation'],
    },
    itsupport: {
      titles: [
        'VPN disconnects every {mins} minutes for remote staff',
        'Password reset emails not arriving',
        'Printer on floor {floor} shows offline',
        'MFA prompt loop in the mobile app',
        'Shared mailbox permissions for {team2}',
        'Wi-Fi drops in meeting room {room}',
        'Disk almost full on build agent {agent}',
        'Certificate expires soon on {host}',
        'Teams calls echo on the new headsets',
        'Upgrade Office on the {city} kiosk machines',
      ],
      details: [
        'Users see error 0x{code} and have to sign in again.',
        'The issue started after the patch window on {day}; rollback is possible.',
        'About {qty} people are affected; a workaround is to use the guest network.',
        'Monitoring shows {pct}% disk usage; the cleanup job has not run since {day}.',
        'The certificate for {host} expires on {day}; renewal needs a change ticket.',
        'The vendor asked for logs from two affected devices before opening a case.',
      ],
      tags: ['it', 'network', 'vpn', 'accounts', 'hardware', 'security', 'email', 'printing'],
    },
    finance: {
      titles: [
        'Quarter-end accrual for the {city} office',
        'Vendor invoice {order} missing a purchase order',
        'Budget reforecast for {team2}',
        'Expense report rejected for missing receipts',
        'Audit request: {currency} bank statements for {month}',
        'Intercompany transfer to {city} not booked',
      ],
      details: [
        'The controller needs the numbers by {day} for the close.',
        'The invoice total is {amount} {currency}; approval is above the team limit.',
        'The auditors asked for evidence of the approval workflow for {month}.',
        'The cost centre mapping changed last month, which explains part of the variance.',
      ],
      tags: ['finance', 'accounting', 'audit', 'budget', 'invoices', 'close', 'expenses'],
    },
  };
  const fill: Record<string, () => string> = {
    merchant: () =>
      pick([
        'Fourth Coffee',
        'Tailspin Toys',
        'Wide World Importers',
        'Northwind Traders',
        'Adatum',
        'Lamna Healthcare',
      ]),
    order: () => `ORD-${int(100000, 999999)}`,
    currency: () => pick(['EUR', 'USD', 'GBP', 'CHF', 'SEK', 'JPY']),
    day: () => `2025-${String(int(1, 10)).padStart(2, '0')}-${String(int(1, 28)).padStart(2, '0')}`,
    city: () => pick(['Seattle', 'Munich', 'Zürich', 'Lyon', 'Osaka', 'São Paulo', 'Dublin', 'Malmö']),
    sku: () => `SKU-${int(10000, 99999)}`,
    truck: () => `TR-${int(100, 999)}`,
    bay: () => String(int(1, 24)),
    container: () => `MSCU${int(1000000, 9999999)}`,
    name: () =>
      pick([
        'Ana Souza',
        'Björn Lindqvist',
        'Chen Wei',
        'Fatima Zahra',
        'Kenji Sato',
        'Olivia Brown',
        'Rahul Mehta',
        'Zoë Dubois',
      ]),
    month: () => pick(['January', 'February', 'March', 'April', 'May', 'June', 'July', 'August', 'September']),
    mins: () => String(int(5, 45)),
    floor: () => String(int(1, 12)),
    team2: () => pick(['Marketing', 'Sales EMEA', 'Legal', 'Customer Success']),
    room: () => pick(['Rainier', 'Olympus', 'Baker', 'Adams', 'Hood']),
    agent: () => `build-${int(1, 40)}`,
    host: () => pick(['intranet.contoso.com', 'api.contoso.com', 'sso.contoso.com', 'files.contoso.com']),
    code: () => int(0x1000, 0xffff).toString(16).toUpperCase(),
    pct: () => String(int(2, 40)),
    amount: () => (int(1000, 9999999) / 100).toFixed(2),
    days: () => String(int(2, 14)),
    qty: () => String(int(10, 500)),
    qty2: () => String(int(10, 500)),
    time: () => `${String(int(0, 23)).padStart(2, '0')}:${String(int(0, 59)).padStart(2, '0')}`,
  };
  const render = (t: string) => t.replace(/\{(\w+)\}/g, (_: string, k: string) => (fill[k] ? fill[k]() : `{${k}}`));

  const statuses = ['open', 'open', 'inProgress', 'inProgress', 'blocked', 'done', 'done'];
  const teamNames = [
    'payments',
    'payments',
    'logistics',
    'logistics',
    'hronboarding',
    'itsupport',
    'itsupport',
    'finance',
  ];
  const everyone = users.filter((u) => !u.guest);
  const start = Date.UTC(2025, 0, 6, 8, 0, 0);
  const span = Date.UTC(2025, 9, 31) - start;

  const count = options.count ?? 360;
  const tasks: SampleTask[] = [];
  for (let i = 0; i < count; i++) {
    const team = pick(teamNames);
    const topic = topics[team]!;
    const members = teamUsers[team]!;
    const created = new Date(start + Math.floor(rand() * span));
    const edited = new Date(created.getTime() + int(0, 40 * 24) * 3600_000 + int(0, 3599) * 1000);
    const title = render(pick(topic.titles));
    const description = sample(topic.details, int(2, 4)).map(render).join(' ');
    const r = rand();
    const visibility = r < 0.8 ? 'team' : r < 0.9 ? 'restricted' : r < 0.95 ? 'public' : 'team';
    const task: SampleTask = {
      ticketId: `TSP${String(100000 + i * 7 + int(0, 6))}`,
      title,
      description,
      status: pick(statuses),
      priority: pick([1, 2, 2, 3, 3, 3, 4, 4]),
      createdBy: pick(members).userPrincipalName,
      assignedTo: pick(members).userPrincipalName,
      team,
      tags: sample(topic.tags, int(1, 3)),
      // Most timestamps are UTC; a few carry an offset, as exported by a regional office (the mapping normalises).
      createdDate: rand() < 0.08 ? created.toISOString().replace('Z', '+00:00') : created.toISOString(),
      lastEditedDate: edited.toISOString(),
      visibility,
    };
    if (visibility === 'restricted') {
      task.allowedUsers = sample(everyone, int(1, 3)).map((u) => u.userPrincipalName);
    }
    // A few team tickets hide from one team member (e.g. a ticket about that person).
    if (visibility === 'team' && r >= 0.95) {
      task.deniedUsers = [pick(members).userPrincipalName];
    }
    tasks.push(task);
  }
  // Attachments (written by scripts/fixtures/write-samples.ts): the first ticket carries all three, and the
  // next logistics ticket links the route plan under a friendlier name. Added after the loop so the seeded
  // random sequence, and so every other field, stays as it was.
  const first = tasks[0];
  if (first?.ticketId === 'TSP100000') {
    first.attachments = [
      'TSP100000-customs-checklist.pdf',
      'TSP100000-route-plan.docx',
      'TSP100000-scanned-receipt.png',
    ];
    const other = tasks.find((t, i) => i > 0 && t.team === 'logistics');
    if (other) other.attachments = [{ path: 'TSP100000-route-plan.docx', name: 'city-centre-route-plan.docx' }];
  }

  return {
    'directory.json': JSON.stringify({ users, groups }, null, 2) + '\n',
    'teams.json': JSON.stringify(teams, null, 2) + '\n',
    'tasks.jsonl': tasks.map((t) => JSON.stringify(t)).join('\n') + '\n',
  };
}
