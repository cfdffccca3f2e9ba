export { TenantSettings } from './components/TenantSettings';
export { tenantKeys, fetchTenant } from './api';
