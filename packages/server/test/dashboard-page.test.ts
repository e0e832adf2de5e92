/** The dashboard page without a browser: its script parses, and the title is escaped. */
import { describe, expect, it } from 'vitest';
import { dashboardPage } from '../src/dashboard/dashboard-page.js';

describe('dashboardPage', () => {
  it('holds one inline script that parses as JavaScript, and fetches nothing from elsewhere', () => {
    const html = dashboardPage('raft-kv');
    const scripts = [...html.matchAll(/<script>([\s\S]*?)<\/script>/g)].map((m) => m[1] as string);
    expect(scripts).toHaveLength(1);
    expect(() => new Function(scripts[0] as string)).not.toThrow();
    // Addresses are built from the cluster's answers ('http://' + m.http); none is written in.
    expect(html).not.toMatch(/<script[^>]+src=|<link[^>]+href=|https?:\/\/[A-Za-z0-9]/);
  });

  it('escapes the service name', () => {
    const html = dashboardPage('<b>"x"&</b>');
    expect(html).toContain('<title>&#60;b&#62;&#34;x&#34;&#38;&#60;/b&#62; · cluster</title>');
    expect(html).not.toContain('<b>"x"');
  });
});
