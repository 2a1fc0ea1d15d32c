/** Every [method, url] in Fastify's printRoutes() tree (HEAD and the /docs plugin's routes left out). */
export function routesFromTree(tree: string): { method: string; url: string }[] {
  const routes: { method: string; url: string }[] = [];
  const stack: string[] = [];
  for (const line of tree.split('\n')) {
    const m = /^((?:│ {3}| {4})*)(?:├── |└── )(.+?)(?: \(([A-Z, ]+)\))?$/.exec(line);
    if (!m) continue;
    const depth = m[1]!.length / 4;
    const url = (depth === 0 ? '' : stack[depth - 1]!) + m[2]!;
    stack[depth] = url;
    stack.length = depth + 1;
    for (const method of (m[3] ?? '').split(', ').filter(Boolean)) {
      // OPTIONS * is CORS's preflight route: public by design (a preflight carries no credentials).
      if (method !== 'HEAD' && method !== 'OPTIONS' && !url.startsWith('/docs')) routes.push({ method, url });
    }
  }
  return routes;
}
