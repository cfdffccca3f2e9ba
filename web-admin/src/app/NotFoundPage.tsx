import { Link } from '@tanstack/react-router';

export function NotFoundPage() {
  return (
    <main id="main" style={{ padding: '2rem' }}>
      <h1>Page not found</h1>
      <p>
        This address is not a page of the console. <Link to="/">Go to the overview</Link>.
      </p>
    </main>
  );
}
