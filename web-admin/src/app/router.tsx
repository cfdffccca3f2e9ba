/**
 * Every view has a URL: /tenants/{tenant}/namespaces/{namespace}/topics/{topic}?tab=... with typed
 * search parameters (lib/search.ts). Pages load on demand, so the first page needs only the shell.
 */
import { createRootRoute, createRoute, createRouter, lazyRouteComponent, Outlet } from '@tanstack/react-router';
import { validateNamespace, validateSignIn, validateTenant, validateTopic } from '../lib/search';
import { AppLayout } from './AppLayout';
import { SignInPage } from '../features/auth/components/SignInPage';
import { NotFoundPage } from './NotFoundPage';

const rootRoute = createRootRoute({ component: Outlet, notFoundComponent: NotFoundPage });

const signInRoute = createRoute({
  getParentRoute: () => rootRoute,
  path: '/signin',
  validateSearch: validateSignIn,
  component: SignInPage,
});

const appRoute = createRoute({ getParentRoute: () => rootRoute, id: 'app', component: AppLayout });

const overviewRoute = createRoute({
  getParentRoute: () => appRoute,
  path: '/',
  component: lazyRouteComponent(() => import('../features/cluster/components/OverviewPage'), 'OverviewPage'),
});

const tenantsRoute = createRoute({
  getParentRoute: () => appRoute,
  path: '/tenants',
  component: lazyRouteComponent(() => import('../features/tenants/components/TenantsPage'), 'TenantsPage'),
});

const tenantRoute = createRoute({
  getParentRoute: () => appRoute,
  path: '/tenants/$tenant',
  validateSearch: validateTenant,
  component: lazyRouteComponent(() => import('./pages/TenantPage'), 'TenantPage'),
});

const namespaceRoute = createRoute({
  getParentRoute: () => appRoute,
  path: '/tenants/$tenant/namespaces/$namespace',
  validateSearch: validateNamespace,
  component: lazyRouteComponent(() => import('./pages/NamespacePage'), 'NamespacePage'),
});

const topicRoute = createRoute({
  getParentRoute: () => appRoute,
  path: '/tenants/$tenant/namespaces/$namespace/topics/$topic',
  validateSearch: validateTopic,
  component: lazyRouteComponent(() => import('./pages/TopicPage'), 'TopicPage'),
});

const routeTree = rootRoute.addChildren([
  signInRoute,
  appRoute.addChildren([overviewRoute, tenantsRoute, tenantRoute, namespaceRoute, topicRoute]),
]);

export const router = createRouter({ routeTree, defaultPreload: 'intent', scrollRestoration: true });

declare module '@tanstack/react-router' {
  interface Register {
    router: typeof router;
  }
}
