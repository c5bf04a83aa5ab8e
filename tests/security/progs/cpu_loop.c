/* Spins forever on one CPU: the box must end it with TLE. */
int main(void)
{
    volatile unsigned long x = 0;
    for (;;)
        x++;
}
